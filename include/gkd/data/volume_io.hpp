// SPDX-License-Identifier: Apache-2.0
// (classic include guard: the implementation section must be reachable by a second inclusion in the
//  one translation unit that defines GKD_VOLUME_IO_IMPLEMENTATION)
#ifndef GKD_DATA_VOLUME_IO_HPP
#define GKD_DATA_VOLUME_IO_HPP
/// @file
/// CT volumes: NIfTI-1/2 (`.nii`, `.nii.gz`; LiTS) through niftilib (Debian `libnifti2-dev`) and DICOM
/// series (one file per slice; CHAOS) through GDCM (Debian `libgdcm-dev`), in Hounsfield units.
///
/// Contract
/// - `Volume::data` is D×H×W float: D slices, H rows, W columns, in the file's voxel order (NIfTI: i fastest
///   → W, j → H, k → D; no reorientation). `spacing` is (slice, row, column) in mm.
/// - Intensities are rescaled from the header: NIfTI `scl_slope`/`scl_inter` (ignored when the slope is 0,
///   per the standard), DICOM Rescale Slope (0028,1053) / Rescale Intercept (0028,1052). CT files thus give HU.
/// - A DICOM series is every readable `.dcm` (or extension-less) file of a folder, sorted along the slice
///   normal by Image Position (Patient) (file-name order where positions tie); all slices must share
///   rows, columns and pixel spacing.
/// - Every failure throws gkd::Error naming the file: missing, 0-byte, unreadable header, unsupported
///   data type, mismatched slices. Without niftilib / GDCM the readers throw naming the Debian package.
///
/// The niftilib/GDCM code is compiled once: one translation unit defines `GKD_VOLUME_IO_IMPLEMENTATION`
/// before including this header; cmake/GkdImageIO.cmake links the libraries to gkd::gkd.
///
/// @code
/// #define GKD_VOLUME_IO_IMPLEMENTATION   // in exactly one .cpp
/// #include <gkd/data/volume_io.hpp>
/// gkd::data::Volume ct = gkd::data::read_nifti("volume-0.nii");             // HU, [D, H, W]
/// gkd::data::Volume seg = gkd::data::read_nifti("segmentation-0.nii");      // labels 0, 1, 2
/// gkd::data::Volume chaos = gkd::data::read_dicom_series("CT/1/DICOM_anon");
/// @endcode
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "gkd/core/tensor.hpp"

namespace gkd::data {

/// A scalar volume in physical units.
struct Volume {
  Tensor<float> data;                        ///< D×H×W
  std::array<double, 3> spacing{1, 1, 1};    ///< (slice, row, column) voxel size in mm
  std::vector<std::filesystem::path> files;  ///< the file(s) it came from (slices in order for DICOM)
};

/// Reads a NIfTI-1 or NIfTI-2 file (`.nii`, `.nii.gz`, or a `.hdr`/`.img` pair); 4-D files keep the first volume.
Volume read_nifti(const std::filesystem::path& path);
/// Writes `volume` as float32 NIfTI-1 (`.nii` or `.nii.gz` by the name) with slope 1, intercept 0.
void write_nifti(const std::filesystem::path& path, const Volume& volume);
/// Reads one DICOM slice as a 1×H×W volume in rescaled units.
Volume read_dicom(const std::filesystem::path& path);
/// How `read_dicom_series` orders slices.
enum class SliceOrder {
  position,   ///< along the slice normal by Image Position (Patient) (file name where positions tie)
  file_name,  ///< by file name (CHAOS pairs `Ground/liver_GT_000.png`... with DICOM files in name order)
};
/// Reads every slice of a DICOM series in `folder`.
Volume read_dicom_series(const std::filesystem::path& folder, SliceOrder order = SliceOrder::position);

}  // namespace gkd::data

#endif  // GKD_DATA_VOLUME_IO_HPP

// ================================ implementation (one TU only) ========================================
#if defined(GKD_VOLUME_IO_IMPLEMENTATION) && !defined(GKD_VOLUME_IO_IMPLEMENTED)
#define GKD_VOLUME_IO_IMPLEMENTED
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>

#include "gkd/core/error.hpp"
#if defined(GKD_HAS_NIFTI)
#include <nifti2_io.h>
#endif
#if defined(GKD_HAS_GDCM)
#include <gdcmImage.h>
#include <gdcmImageReader.h>
#include <gdcmPixelFormat.h>
#include <gdcmTrace.h>
#endif

namespace gkd::data {

namespace detail_volume {
inline void check_file(const std::filesystem::path& path, const char* op) {
  std::error_code ec;
  GKD_CHECK(std::filesystem::is_regular_file(path, ec), op, path.string() << ": cannot open (missing file or not a file)");
  GKD_CHECK(std::filesystem::file_size(path, ec) > 0, op, path.string() << ": empty (0-byte) file");
}
template <class S>
void convert(const void* src, float* dst, std::int64_t n, double slope, double inter) {
  const S* s = static_cast<const S*>(src);
  for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(double(s[i]) * slope + inter);
}
}  // namespace detail_volume

#if defined(GKD_HAS_NIFTI)
Volume read_nifti(const std::filesystem::path& path) {
  detail_volume::check_file(path, "read_nifti");
  nifti_set_debug_level(0);
  std::unique_ptr<nifti_image, void (*)(nifti_image*)> nim(nifti_image_read(path.c_str(), 1), nifti_image_free);
  GKD_CHECK(nim != nullptr, "read_nifti", path.string() << ": unreadable NIfTI header or truncated data");
  GKD_CHECK(nim->data != nullptr, "read_nifti", path.string() << ": no voxel data (truncated file?)");
  const std::int64_t nx = nim->nx, ny = std::max<std::int64_t>(nim->ny, 1), nz = std::max<std::int64_t>(nim->nz, 1);
  GKD_CHECK(nx > 0 && nim->ndim >= 1 && nx * ny * nz <= nim->nvox, "read_nifti",
            path.string() << ": inconsistent dimensions " << nx << "x" << ny << "x" << nz << " for " << nim->nvox
                          << " voxels");
  const double slope = nim->scl_slope == 0 || !std::isfinite(nim->scl_slope) ? 1.0 : nim->scl_slope;
  const double inter = nim->scl_slope == 0 || !std::isfinite(nim->scl_inter) ? 0.0 : nim->scl_inter;
  Volume v;
  v.data = Tensor<float>::empty({nz, ny, nx});
  v.spacing = {std::abs(double(nim->dz)), std::abs(double(nim->dy)), std::abs(double(nim->dx))};
  v.files = {path};
  float* out = v.data.data();
  const std::int64_t n = nx * ny * nz;
  switch (nim->datatype) {
    case DT_UINT8: detail_volume::convert<std::uint8_t>(nim->data, out, n, slope, inter); break;
    case DT_INT8: detail_volume::convert<std::int8_t>(nim->data, out, n, slope, inter); break;
    case DT_INT16: detail_volume::convert<std::int16_t>(nim->data, out, n, slope, inter); break;
    case DT_UINT16: detail_volume::convert<std::uint16_t>(nim->data, out, n, slope, inter); break;
    case DT_INT32: detail_volume::convert<std::int32_t>(nim->data, out, n, slope, inter); break;
    case DT_UINT32: detail_volume::convert<std::uint32_t>(nim->data, out, n, slope, inter); break;
    case DT_INT64: detail_volume::convert<std::int64_t>(nim->data, out, n, slope, inter); break;
    case DT_UINT64: detail_volume::convert<std::uint64_t>(nim->data, out, n, slope, inter); break;
    case DT_FLOAT32: detail_volume::convert<float>(nim->data, out, n, slope, inter); break;
    case DT_FLOAT64: detail_volume::convert<double>(nim->data, out, n, slope, inter); break;
    default: GKD_FAIL("read_nifti", path.string() << ": unsupported NIfTI datatype " << nim->datatype);
  }
  return v;
}

void write_nifti(const std::filesystem::path& path, const Volume& volume) {
  GKD_CHECK(volume.data.dim() == 3 && volume.data.numel() > 0, "write_nifti",
            path.string() << ": expects a D×H×W volume, got " << to_string(volume.data.shape()));
  const std::int64_t dims[8] = {3, volume.data.size(2), volume.data.size(1), volume.data.size(0), 1, 1, 1, 1};
  nifti_set_debug_level(0);
  std::unique_ptr<nifti_image, void (*)(nifti_image*)> nim(nifti_make_new_nim(dims, DT_FLOAT32, 1), nifti_image_free);
  GKD_CHECK(nim != nullptr, "write_nifti", path.string() << ": niftilib could not allocate the image");
  nim->dz = nim->pixdim[3] = volume.spacing[0];
  nim->dy = nim->pixdim[2] = volume.spacing[1];
  nim->dx = nim->pixdim[1] = volume.spacing[2];
  nim->scl_slope = 1.0;
  nim->scl_inter = 0.0;
  const Tensor<float> src = volume.data.contiguous();
  std::memcpy(nim->data, src.data(), sizeof(float) * static_cast<std::size_t>(src.numel()));
  GKD_CHECK(nifti_set_filenames(nim.get(), path.c_str(), 0, 1) == 0, "write_nifti",
            path.string() << ": not a NIfTI file name (.nii or .nii.gz)");
  nifti_image_write(nim.get());
  std::error_code ec;
  GKD_CHECK(std::filesystem::file_size(path, ec) > 0, "write_nifti", path.string() << ": write failed");
}
#else
Volume read_nifti(const std::filesystem::path& path) {
  GKD_FAIL("read_nifti", path.string() << ": NIfTI support is not built in; install niftilib (Debian: libnifti2-dev) and reconfigure");
}
void write_nifti(const std::filesystem::path& path, const Volume&) {
  GKD_FAIL("write_nifti", path.string() << ": NIfTI support is not built in; install niftilib (Debian: libnifti2-dev) and reconfigure");
}
#endif

#if defined(GKD_HAS_GDCM)
namespace detail_volume {
struct DicomSlice {
  std::filesystem::path file;
  Tensor<float> pixels;  // H×W
  std::array<double, 3> origin{0, 0, 0}, normal{0, 0, 1};
  std::array<double, 2> spacing{1, 1};  // row, column
  double thickness = 1;
};

/// GDCM accepts an uncompressed Pixel Data element cut short by the end of the file ("use file at own
/// risk"); this finds the last (7FE0,0010) tag in explicit or implicit little-endian form and checks that
/// its declared length fits in the file (encapsulated data, of undefined length, is left to GDCM).
inline bool pixel_data_truncated(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string tag("\xE0\x7F\x10\x00", 4);
  const auto at = b.rfind(tag);
  if (at == std::string::npos || at + 8 > b.size()) return false;
  auto u32 = [&](std::size_t o) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[o + i]);
    return v;
  };
  const std::string vr = b.substr(at + 4, 2);
  const bool explicit_vr = vr == "OW" || vr == "OB" || vr == "OF" || vr == "OD" || vr == "UN";
  if (explicit_vr && at + 12 > b.size()) return true;
  const std::uint32_t len = explicit_vr ? u32(at + 8) : u32(at + 4);
  const std::size_t start = at + (explicit_vr ? 12 : 8);
  return len != 0xFFFFFFFFu && start + len > b.size();
}

inline DicomSlice read_slice(const std::filesystem::path& path) {
  check_file(path, "read_dicom");
  gdcm::Trace::WarningOff();  // problems become gkd::Error, not stderr chatter
  gdcm::Trace::ErrorOff();
  gdcm::ImageReader reader;
  reader.SetFileName(path.c_str());
  GKD_CHECK(reader.Read(), "read_dicom", path.string() << ": not a readable DICOM image (bad header or no pixel data)");
  const gdcm::Image& img = reader.GetImage();
  GKD_CHECK(img.GetNumberOfDimensions() >= 2, "read_dicom", path.string() << ": not a 2-D image");
  const unsigned* dim = img.GetDimensions();
  const std::int64_t w = dim[0], h = dim[1], frames = img.GetNumberOfDimensions() > 2 ? dim[2] : 1;
  GKD_CHECK(w > 0 && h > 0 && frames == 1, "read_dicom",
            path.string() << ": " << w << "x" << h << "x" << frames << " (only single-frame slices are supported)");
  const gdcm::PixelFormat pf = img.GetPixelFormat();
  GKD_CHECK(pf.GetSamplesPerPixel() == 1, "read_dicom", path.string() << ": " << pf.GetSamplesPerPixel()
                                                                      << " samples per pixel (CT is monochrome)");
  GKD_CHECK(!pixel_data_truncated(path), "read_dicom",
            path.string() << ": truncated Pixel Data (the file ends before the length its header declares)");
  std::vector<char> buffer(img.GetBufferLength());
  GKD_CHECK(!buffer.empty() && img.GetBuffer(buffer.data()), "read_dicom",
            path.string() << ": pixel data cannot be decoded (truncated, or a transfer syntax GDCM lacks)");
  const double slope = img.GetSlope(), inter = img.GetIntercept();
  DicomSlice s;
  s.file = path;
  s.pixels = Tensor<float>::empty({h, w});
  const std::int64_t n = h * w;
  const std::size_t need = static_cast<std::size_t>(n) * pf.GetPixelSize();
  GKD_CHECK(buffer.size() >= need, "read_dicom", path.string() << ": pixel data holds " << buffer.size()
                                                                << " bytes, " << need << " needed");
  float* out = s.pixels.data();
  switch (pf.GetScalarType()) {
    case gdcm::PixelFormat::UINT8: convert<std::uint8_t>(buffer.data(), out, n, slope, inter); break;
    case gdcm::PixelFormat::INT8: convert<std::int8_t>(buffer.data(), out, n, slope, inter); break;
    case gdcm::PixelFormat::UINT16: convert<std::uint16_t>(buffer.data(), out, n, slope, inter); break;
    case gdcm::PixelFormat::INT16: convert<std::int16_t>(buffer.data(), out, n, slope, inter); break;
    case gdcm::PixelFormat::UINT32: convert<std::uint32_t>(buffer.data(), out, n, slope, inter); break;
    case gdcm::PixelFormat::INT32: convert<std::int32_t>(buffer.data(), out, n, slope, inter); break;
    case gdcm::PixelFormat::FLOAT32: convert<float>(buffer.data(), out, n, slope, inter); break;
    case gdcm::PixelFormat::FLOAT64: convert<double>(buffer.data(), out, n, slope, inter); break;
    default: GKD_FAIL("read_dicom", path.string() << ": unsupported pixel type " << pf);
  }
  const double* o = img.GetOrigin();
  const double* c = img.GetDirectionCosines();
  const double* sp = img.GetSpacing();
  s.origin = {o[0], o[1], o[2]};
  s.normal = {c[1] * c[5] - c[2] * c[4], c[2] * c[3] - c[0] * c[5], c[0] * c[4] - c[1] * c[3]};
  s.spacing = {sp[1], sp[0]};
  s.thickness = sp[2];
  return s;
}
}  // namespace detail_volume

Volume read_dicom(const std::filesystem::path& path) {
  auto s = detail_volume::read_slice(path);
  Volume v;
  v.data = s.pixels.unsqueeze(0).contiguous();
  v.spacing = {s.thickness, s.spacing[0], s.spacing[1]};
  v.files = {path};
  return v;
}

Volume read_dicom_series(const std::filesystem::path& folder, SliceOrder order) {
  std::error_code ec;
  GKD_CHECK(std::filesystem::is_directory(folder, ec), "read_dicom_series", folder.string() << ": no such folder");
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(folder, ec)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (e.is_regular_file() && (ext == ".dcm" || ext == ".ima" || ext.empty())) files.push_back(e.path());
  }
  GKD_CHECK(!files.empty(), "read_dicom_series", folder.string() << ": no DICOM files (.dcm, .ima or no extension)");
  std::sort(files.begin(), files.end());
  std::vector<detail_volume::DicomSlice> slices;
  for (const auto& f : files) slices.push_back(detail_volume::read_slice(f));
  const auto& first = slices.front();
  for (const auto& s : slices)
    GKD_CHECK(s.pixels.shape() == first.pixels.shape() && std::abs(s.spacing[0] - first.spacing[0]) < 1e-6 &&
                  std::abs(s.spacing[1] - first.spacing[1]) < 1e-6,
              "read_dicom_series",
              s.file.string() << ": slice " << to_string(s.pixels.shape()) << " spacing " << s.spacing[0] << "x"
                              << s.spacing[1] << " differs from " << first.file.string() << " "
                              << to_string(first.pixels.shape()) << " spacing " << first.spacing[0] << "x"
                              << first.spacing[1]);
  auto position = [&](const detail_volume::DicomSlice& s) {
    return s.origin[0] * first.normal[0] + s.origin[1] * first.normal[1] + s.origin[2] * first.normal[2];
  };
  if (order == SliceOrder::position)
    std::stable_sort(slices.begin(), slices.end(), [&](const auto& a, const auto& b) { return position(a) < position(b); });
  const std::int64_t d = static_cast<std::int64_t>(slices.size()), h = first.pixels.size(0), w = first.pixels.size(1);
  Volume v;
  v.data = Tensor<float>::empty({d, h, w});
  for (std::int64_t k = 0; k < d; ++k) {
    std::copy_n(slices[k].pixels.data(), h * w, v.data.data() + k * h * w);
    v.files.push_back(slices[k].file);
  }
  const double gap = d > 1 ? std::abs(position(slices[1]) - position(slices[0])) : first.thickness;
  v.spacing = {gap > 0 ? gap : first.thickness, first.spacing[0], first.spacing[1]};
  return v;
}
#else
Volume read_dicom(const std::filesystem::path& path) {
  GKD_FAIL("read_dicom", path.string() << ": DICOM support is not built in; install GDCM (Debian: libgdcm-dev) and reconfigure");
}
Volume read_dicom_series(const std::filesystem::path& folder, SliceOrder) {
  GKD_FAIL("read_dicom_series", folder.string() << ": DICOM support is not built in; install GDCM (Debian: libgdcm-dev) and reconfigure");
}
#endif

}  // namespace gkd::data
#endif  // GKD_VOLUME_IO_IMPLEMENTATION
