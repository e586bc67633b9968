# SPDX-License-Identifier: Apache-2.0
# Optional decoders of include/gkd/data/ (image_io.hpp, volume_io.hpp). Each one found adds an INTERFACE
# compile definition and its library to the gkd target; a missing one leaves the matching reader throwing a
# gkd::Error that names the Debian package enabling it. stb_image (libstb-dev) is required for all images.
# The optional parts are BUILD_INTERFACE only: the installed package config does not yet re-find libtiff,
# zlib, niftilib or GDCM, so an installed gkd::gkd offers stb formats only (the readers say what is missing).
find_path(GKD_STB_INCLUDE_DIR stb/stb_image.h)
if(GKD_STB_INCLUDE_DIR)
  target_include_directories(gkd SYSTEM INTERFACE $<BUILD_INTERFACE:${GKD_STB_INCLUDE_DIR}>)
  message(STATUS "gkd data: stb_image found (PNG, JPEG, BMP, GIF, PPM/PGM)")
else()
  message(STATUS "gkd data: stb_image NOT found: image decoding unavailable (Debian: libstb-dev)")
endif()

find_package(TIFF QUIET)
if(TIFF_FOUND)
  target_compile_definitions(gkd INTERFACE $<BUILD_INTERFACE:GKD_HAS_TIFF=1>)
  target_link_libraries(gkd INTERFACE $<BUILD_INTERFACE:TIFF::TIFF>)
  message(STATUS "gkd data: libtiff ${TIFF_VERSION_STRING} found (TIFF, DRIVE)")
else()
  message(STATUS "gkd data: libtiff NOT found: TIFF off (Debian: libtiff-dev)")
endif()

find_package(ZLIB QUIET)
if(ZLIB_FOUND)
  target_compile_definitions(gkd INTERFACE $<BUILD_INTERFACE:GKD_HAS_ZLIB=1>)
  target_link_libraries(gkd INTERFACE $<BUILD_INTERFACE:ZLIB::ZLIB>)
  message(STATUS "gkd data: zlib ${ZLIB_VERSION_STRING} found (.gz images and volumes)")
else()
  message(STATUS "gkd data: zlib NOT found: .gz off (Debian: zlib1g-dev)")
endif()

# NIfTI-1/2 (niftilib's nifti2_io, Debian libnifti2-dev): its CMake config is sometimes incomplete, so look
# for the header and library directly.
find_path(GKD_NIFTI_INCLUDE_DIR nifti2_io.h PATH_SUFFIXES nifti)
find_library(GKD_NIFTI2_LIBRARY NAMES nifti2)
find_library(GKD_ZNZ_LIBRARY NAMES znz)
if(GKD_NIFTI_INCLUDE_DIR AND GKD_NIFTI2_LIBRARY AND GKD_ZNZ_LIBRARY AND ZLIB_FOUND)
  target_compile_definitions(gkd INTERFACE $<BUILD_INTERFACE:GKD_HAS_NIFTI=1>)
  target_include_directories(gkd SYSTEM INTERFACE $<BUILD_INTERFACE:${GKD_NIFTI_INCLUDE_DIR}>)
  target_link_libraries(gkd INTERFACE $<BUILD_INTERFACE:${GKD_NIFTI2_LIBRARY}> $<BUILD_INTERFACE:${GKD_ZNZ_LIBRARY}>
                                      $<BUILD_INTERFACE:ZLIB::ZLIB> $<BUILD_INTERFACE:m>)
  message(STATUS "gkd data: NIfTI found (${GKD_NIFTI2_LIBRARY}; .nii, .nii.gz)")
else()
  message(STATUS "gkd data: NIfTI NOT found: .nii off (Debian: libnifti2-dev)")
endif()

# DICOM through GDCM 3 (Debian libgdcm-dev).
find_path(GKD_GDCM_INCLUDE_DIR gdcmImageReader.h PATH_SUFFIXES gdcm-3.0 gdcm-3.1)
find_library(GKD_GDCM_MSFF NAMES gdcmMSFF)
find_library(GKD_GDCM_DSED NAMES gdcmDSED)
find_library(GKD_GDCM_COMMON NAMES gdcmCommon)
if(GKD_GDCM_INCLUDE_DIR AND GKD_GDCM_MSFF AND GKD_GDCM_DSED AND GKD_GDCM_COMMON)
  target_compile_definitions(gkd INTERFACE $<BUILD_INTERFACE:GKD_HAS_GDCM=1>)
  target_include_directories(gkd SYSTEM INTERFACE $<BUILD_INTERFACE:${GKD_GDCM_INCLUDE_DIR}>)
  target_link_libraries(gkd INTERFACE $<BUILD_INTERFACE:${GKD_GDCM_MSFF}> $<BUILD_INTERFACE:${GKD_GDCM_DSED}>
                                      $<BUILD_INTERFACE:${GKD_GDCM_COMMON}>)
  message(STATUS "gkd data: GDCM found (DICOM series, CHAOS)")
else()
  message(STATUS "gkd data: GDCM NOT found: DICOM off (Debian: libgdcm-dev)")
endif()
