// Summary statistics and equal-width binning over a span of numbers.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <vector>

namespace histogram {

template <typename T>
concept Number = std::integral<T> || std::floating_point<T>;

struct Summary {
    std::size_t count = 0;
    double min = 0, max = 0, mean = 0, median = 0;
};

struct Bin {
    double low = 0, high = 0; // [low, high), the last one [low, high]
    std::size_t count = 0;
};

// The summary of a non-empty span.
Summary summarise(std::span<const double> values);

// `bins` equal-width bins from min to max (one bin when all values are equal).
std::vector<Bin> bin(std::span<const double> values, const Summary &summary, std::size_t bins);

// The mean of any non-empty range of numbers, summed in double.
template <Number T>
double mean(std::span<const T> values)
{
    double sum = 0;
    for (T v : values)
        sum += static_cast<double>(v);
    return sum / static_cast<double>(values.size());
}

} // namespace histogram
