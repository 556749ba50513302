// Command-line options of the histogram program.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#ifndef HISTOGRAM_DEFAULT_WIDTH
#error "HISTOGRAM_DEFAULT_WIDTH must be defined (project.yaml: defines)"
#endif

namespace histogram {

enum class Mode { words, numbers };

struct Options {
    Mode mode = Mode::words;
    std::size_t width = HISTOGRAM_DEFAULT_WIDTH; // the longest bar, in '#'
    std::size_t bins = 5;                        // numbers: how many equal-width bins
    std::size_t top = 0;                         // words: show only the first N (0: all)
    bool fold_case = false;                      // words: compare ASCII letters caselessly
    bool stats_only = false;                     // numbers: no bars
    bool help = false;
};

// A usage error: the one line to print before the usage text.
struct UsageError {
    std::string message;
};

std::variant<Options, UsageError> parse_options(std::span<const std::string_view> args);

extern const std::string_view usage;

} // namespace histogram
