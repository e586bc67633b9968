// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// All GKD networks: teacher UnetSKA2, students MobileNetV2UNet / ENet / ERFNet, plain UNet, P-SAE
/// LatentNet and the MSAN alignment networks.
/// @code
///   #include <gkd/models/models.hpp>
///   gkd::Generator gen(0);
///   gkd::models::MobileNetV2UNet<float> student({.width = 1.0}, gen);
/// @endcode
#include "gkd/models/enet.hpp"
#include "gkd/models/erfnet.hpp"
#include "gkd/models/latent_net.hpp"
#include "gkd/models/mobilenet_v2_unet.hpp"
#include "gkd/models/msan.hpp"
#include "gkd/models/unet.hpp"
#include "gkd/models/unet_ska2.hpp"
