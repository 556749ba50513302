#include "histogram/options.hpp"

#include <charconv>

namespace histogram {

const std::string_view usage =
    "usage: histogram [-n] [-b BINS] [-s] [-i] [-t TOP] [-w WIDTH] < input\n"
    "  words (default): how often each whitespace-separated word occurs\n"
    "  -n: the input is numbers; show statistics and a binned histogram\n";

namespace {

// Bounds that keep the output (and the memory for bins) reasonable.
constexpr std::size_t max_bins_or_width = 1000;
constexpr std::size_t max_top = 1000000;

// An integer from 1 to max, or nothing.
bool in_range(std::string_view text, std::size_t max, std::size_t &out)
{
    std::size_t value = 0;
    auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (err != std::errc{} || end != text.data() + text.size() || value == 0 || value > max)
        return false;
    out = value;
    return true;
}

} // namespace

std::variant<Options, UsageError> parse_options(std::span<const std::string_view> args)
{
    Options opt;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (arg == "-h" || arg == "--help") {
            opt.help = true;
        } else if (arg == "-n") {
            opt.mode = Mode::numbers;
        } else if (arg == "-s") {
            opt.stats_only = true;
        } else if (arg == "-i") {
            opt.fold_case = true;
        } else if (arg == "-b" || arg == "-t" || arg == "-w") {
            if (i + 1 == args.size())
                return UsageError{"option " + std::string(arg) + " needs a value"};
            std::string_view value = args[++i];
            std::size_t &slot = arg == "-b" ? opt.bins : arg == "-t" ? opt.top : opt.width;
            const std::size_t max = arg == "-t" ? max_top : max_bins_or_width;
            if (!in_range(value, max, slot))
                return UsageError{"option " + std::string(arg) + " needs an integer from 1 to " +
                                  std::to_string(max) + ", not '" + std::string(value) + "'"};
        } else {
            return UsageError{"unknown option '" + std::string(arg) + "'"};
        }
    }
    return opt;
}

} // namespace histogram
