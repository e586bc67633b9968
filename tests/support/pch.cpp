// SPDX-License-Identifier: Apache-2.0
// Compiles the tests' shared precompiled header (Catch2 + gkd).
