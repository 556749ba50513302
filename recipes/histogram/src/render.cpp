#include "histogram/render.hpp"

#include <algorithm>
#include <charconv>
#include <ranges>
#include <string>

namespace histogram {

std::string fixed2(double value)
{
    // std::to_chars is exact and ignores the locale; 400 bytes hold any double in fixed notation.
    char buf[400];
    const auto result = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed, 2);
    return std::string(buf, result.ptr);
}

void render(std::ostream &out, const std::vector<Row> &rows, std::size_t width)
{
    if (rows.empty())
        return;
    auto labels = rows | std::views::transform([](const Row &r) { return r.label.size(); });
    auto counts = rows | std::views::transform([](const Row &r) { return r.count; });
    const std::size_t label_width = std::ranges::max(labels);
    const std::size_t largest = std::ranges::max(counts);
    const std::size_t count_width = std::to_string(largest).size();
    for (const Row &row : rows) {
        std::size_t bar = largest ? row.count * width / largest : 0;
        if (row.count > 0 && bar == 0)
            bar = 1;
        const std::string count = std::to_string(row.count);
        out << row.label << std::string(label_width - row.label.size(), ' ') << ' '
            << std::string(count_width - count.size(), ' ') << count;
        if (bar > 0)
            out << ' ' << std::string(bar, '#');
        out << '\n';
    }
}

} // namespace histogram
