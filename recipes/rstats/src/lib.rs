//! Summary statistics of a list of numbers, for Rust callers and, through the
//! `extern "C"` functions at the end, for C callers and recipe's function cases.

mod parse;

pub use parse::numbers;

/// The arithmetic mean, or None for no numbers.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// The median (the mean of the two middle values for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

fn parsed(text: *const std::os::raw::c_char) -> Vec<f64> {
    if text.is_null() {
        return Vec::new();
    }
    let text = unsafe { std::ffi::CStr::from_ptr(text) };
    numbers(&text.to_string_lossy()).collect()
}

/// How many numbers `text` holds (whitespace- or comma-separated).
#[no_mangle]
pub extern "C" fn rstats_count(text: *const std::os::raw::c_char) -> usize {
    parsed(text).len()
}

/// The mean of the numbers in `text`; NaN when there are none.
#[no_mangle]
pub extern "C" fn rstats_mean(text: *const std::os::raw::c_char) -> f64 {
    mean(&parsed(text)).unwrap_or(f64::NAN)
}

/// The median of the numbers in `text`; NaN when there are none.
#[no_mangle]
pub extern "C" fn rstats_median(text: *const std::os::raw::c_char) -> f64 {
    median(&parsed(text)).unwrap_or(f64::NAN)
}

/// Whether `x` lies within `tolerance` of `mean`.
#[no_mangle]
pub extern "C" fn rstats_near(x: f64, mean: f64, tolerance: f64) -> bool {
    (x - mean).abs() <= tolerance
}
