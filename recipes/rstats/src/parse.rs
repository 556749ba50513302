/// The numbers of `text`, separated by whitespace or commas; words that are not
/// numbers are skipped.
pub fn numbers(text: &str) -> impl Iterator<Item = f64> + '_ {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|word| !word.is_empty())
        .filter_map(|word| word.parse::<f64>().ok())
}
