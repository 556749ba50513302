//! stats: reads numbers from standard input and prints their count, mean and
//! median, one per line; exits 1 when there are none.

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut text = String::new();
    if std::io::stdin().read_to_string(&mut text).is_err() {
        eprintln!("stats: cannot read standard input");
        return ExitCode::from(2);
    }
    let values: Vec<f64> = rstats::numbers(&text).collect();
    match (rstats::mean(&values), rstats::median(&values)) {
        (Some(mean), Some(median)) => {
            println!("count {}", values.len());
            println!("mean {mean}");
            println!("median {median}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("stats: no numbers");
            ExitCode::from(1)
        }
    }
}
