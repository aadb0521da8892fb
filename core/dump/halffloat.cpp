#include "halffloat.h"

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace qs {

std::uint16_t floatToHalf(float value) {
    std::uint32_t f;
    std::memcpy(&f, &value, sizeof f);
    const std::uint32_t sign = (f >> 16) & 0x8000u;
    const std::uint32_t absf = f & 0x7fffffffu;
    if (absf >= 0x7f800000u) { // inf or nan
        return static_cast<std::uint16_t>(sign | 0x7c00u | (absf > 0x7f800000u ? 0x200u : 0u));
    }
    if (absf >= 0x477ff000u) // rounds to >= 65520: overflow to inf
        return static_cast<std::uint16_t>(sign | 0x7c00u);
    if (absf < 0x38800000u) { // below the smallest normal half: subnormal or zero
        if (absf < 0x33000000u) // < 2^-25 rounds to zero
            return static_cast<std::uint16_t>(sign);
        const std::uint32_t exponent = absf >> 23;
        const std::uint32_t mantissa = (absf & 0x7fffffu) | 0x800000u;
        const std::uint32_t shift = 126u - exponent; // 14..24 -> places the value in 10 bits
        std::uint32_t half = mantissa >> shift;
        const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
        const std::uint32_t halfway = 1u << (shift - 1u);
        if (rest > halfway || (rest == halfway && (half & 1u)))
            ++half;
        return static_cast<std::uint16_t>(sign | half);
    }
    // normal: rebias exponent 127 -> 15 and round the 13 dropped mantissa bits
    std::uint32_t half = ((absf - 0x38000000u) >> 13);
    const std::uint32_t rest = absf & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
        ++half; // may carry into the exponent, which is the correct rounding
    return static_cast<std::uint16_t>(sign | half);
}

float halfToFloat(std::uint16_t bits) {
    const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
    const std::uint32_t exponent = (bits >> 10) & 0x1fu;
    std::uint32_t mantissa = bits & 0x3ffu;
    std::uint32_t f;
    if (exponent == 0) {
        if (mantissa == 0) {
            f = sign;
        } else { // subnormal: normalise
            int e = -1;
            do {
                ++e;
                mantissa <<= 1;
            } while ((mantissa & 0x400u) == 0);
            f = sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((mantissa & 0x3ffu) << 13);
        }
    } else if (exponent == 0x1f) {
        f = sign | 0x7f800000u | (mantissa << 13);
    } else {
        f = sign | ((exponent + 127u - 15u) << 23) | (mantissa << 13);
    }
    float out;
    std::memcpy(&out, &f, sizeof out);
    return out;
}

#if defined(__x86_64__) || defined(__i386__)
// F16C converts 8 halves per instruction; chosen at run time, so the binary still runs
// on a CPU without it.
__attribute__((target("f16c,avx"))) static void halfToFloatF16c(const std::uint16_t* in, float* out,
                                                                 std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; ++i)
        out[i] = halfToFloat(in[i]);
}
#endif

void halfToFloat(const std::uint16_t* in, float* out, std::size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    static const bool f16c = [] {
        // "avx" also checks that the OS saves the AVX registers; F16C (CPUID leaf 1, ECX
        // bit 29) is asked of CPUID directly, as clang's builtin does not know it
        unsigned a = 0, b = 0, c = 0, d = 0;
        return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
    }();
    if (f16c) {
        halfToFloatF16c(in, out, n);
        return;
    }
#endif
    for (std::size_t i = 0; i < n; ++i)
        out[i] = halfToFloat(in[i]);
}

} // namespace qs
