fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: tvrun NAME ARGS-JSON");
        std::process::exit(2);
    }
    println!("{}", tvgen::apply(&args[1], &args[2]));
}
