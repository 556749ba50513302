#include "histogram/stats.hpp"

#include <algorithm>
#include <cmath>

namespace histogram {

Summary summarise(std::span<const double> values)
{
    std::vector<double> sorted(values.begin(), values.end());
    std::ranges::sort(sorted);
    const std::size_t n = sorted.size();
    Summary s;
    s.count = n;
    s.min = sorted.front();
    s.max = sorted.back();
    s.mean = mean(values);
    s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    return s;
}

std::vector<Bin> bin(std::span<const double> values, const Summary &summary, std::size_t bins)
{
    if (summary.min == summary.max)
        bins = 1;
    const double bins_d = static_cast<double>(bins);
    const double span = summary.max - summary.min;
    // When max - min overflows, divide before subtracting instead.
    const bool wide = !std::isfinite(span);
    const double step = wide ? summary.max / bins_d - summary.min / bins_d : span / bins_d;
    std::vector<Bin> out(bins);
    for (std::size_t i = 0; i < bins; ++i) {
        out[i].low = summary.min + step * static_cast<double>(i);
        out[i].high = i + 1 == bins ? summary.max : summary.min + step * static_cast<double>(i + 1);
    }
    const double last = static_cast<double>(bins - 1);
    for (double v : values) {
        double position = 0; // the bin index, clamped to [0, bins - 1] before it becomes one
        if (step > 0)
            position = std::floor(wide ? v / step - summary.min / step : (v - summary.min) / step);
        ++out[static_cast<std::size_t>(std::clamp(position, 0.0, last))].count;
    }
    return out;
}

} // namespace histogram
