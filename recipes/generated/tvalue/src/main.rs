use std::io::Read;

fn main() {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).unwrap();
    match tvalue::parse(&text) {
        Ok(value) => println!("{}", tvalue::to_json(&value)),
        Err(message) => {
            eprintln!("{}", message);
            std::process::exit(2);
        }
    }
}
