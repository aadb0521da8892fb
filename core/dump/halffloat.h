#pragma once
// IEEE 754 binary16 <-> binary32 conversion (round to nearest even).

#include <cstddef>
#include <cstdint>

namespace qs {

std::uint16_t floatToHalf(float value);
float halfToFloat(std::uint16_t bits);
void halfToFloat(const std::uint16_t* in, float* out, std::size_t n);

} // namespace qs
