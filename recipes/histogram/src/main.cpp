// histogram — a text histogram of the words or numbers on standard input.
//
//   histogram [-i] [-t TOP] [-w WIDTH]          words, most frequent first
//   histogram -n [-b BINS] [-s] [-w WIDTH]      numbers: statistics and bins
//
// Exit status: 0 success, 1 bad or empty input, 2 a usage error.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "histogram/options.hpp"
#include "histogram/render.hpp"
#include "histogram/stats.hpp"

namespace {

using namespace histogram;

std::vector<std::string> read_words(std::istream &in)
{
    return {std::istream_iterator<std::string>(in), std::istream_iterator<std::string>()};
}

std::string fold(std::string word)
{
    std::ranges::transform(word, word.begin(),
                           [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; });
    return word;
}

int words(const std::vector<std::string> &input, const Options &opt)
{
    std::map<std::string, std::size_t> freq;
    for (const std::string &w : input)
        ++freq[opt.fold_case ? fold(w) : w];
    std::vector<Row> rows;
    for (const auto &[word, count] : freq)
        rows.push_back({word, count});
    // Most frequent first; the map's order (bytewise) breaks ties.
    std::ranges::stable_sort(rows, std::ranges::greater{}, &Row::count);
    if (opt.top > 0 && rows.size() > opt.top)
        rows.resize(opt.top);
    render(std::cout, rows, opt.width);
    return 0;
}

int numbers(const std::vector<std::string> &input, const Options &opt)
{
    std::vector<double> values;
    for (const std::string &w : input) {
        double v = 0;
        auto [end, err] = std::from_chars(w.data(), w.data() + w.size(), v);
        if (err != std::errc{} || end != w.data() + w.size() || !std::isfinite(v)) {
            std::cerr << "histogram: '" << w << "' is not a number (word " << values.size() + 1
                      << ")\n";
            return 1;
        }
        values.push_back(v);
    }
    const Summary s = summarise(values);
    std::cout << "count  " << s.count << "\nmin    " << fixed2(s.min) << "\nmax    "
              << fixed2(s.max) << "\nmean   " << fixed2(s.mean) << "\nmedian "
              << fixed2(s.median) << '\n';
    if (opt.stats_only)
        return 0;
    std::vector<Row> rows;
    const std::vector<Bin> bins = bin(values, s, opt.bins);
    for (std::size_t i = 0; i < bins.size(); ++i) {
        const char close = i + 1 == bins.size() ? ']' : ')';
        rows.push_back({"[" + fixed2(bins[i].low) + ", " + fixed2(bins[i].high) + close,
                        bins[i].count});
    }
    render(std::cout, rows, opt.width);
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    const auto parsed = parse_options(args);
    if (const auto *error = std::get_if<UsageError>(&parsed)) {
        std::cerr << "histogram: " << error->message << '\n' << usage;
        return 2;
    }
    const Options &opt = std::get<Options>(parsed);
    if (opt.help) {
        std::cout << usage;
        return 0;
    }
    const std::vector<std::string> input = read_words(std::cin);
    if (input.empty()) {
        std::cerr << "histogram: no input\n";
        return 1;
    }
    return opt.mode == Mode::words ? words(input, opt) : numbers(input, opt);
}
