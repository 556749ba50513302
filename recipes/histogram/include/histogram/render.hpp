// Text rendering of labelled counts as aligned rows of '#' bars.
#pragma once

#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

namespace histogram {

struct Row {
    std::string label;
    std::size_t count = 0;
};

// Bars scale so that the largest count is `width` long; a non-zero count
// always shows at least one '#'.
void render(std::ostream &out, const std::vector<Row> &rows, std::size_t width);

// A number with two decimals, independent of any locale.
std::string fixed2(double value);

} // namespace histogram
