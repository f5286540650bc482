//! The fuzz targets' checks on stable (README, "Fuzzing"): the same functions `cargo fuzz`
//! runs (`fuzz/checks/`), fed every file of each target's corpus (`fuzz/corpus/<target>/`,
//! which holds the reproducers of the bugs fuzzing found) and then pseudo-random inputs from a
//! fixed seed: corpus files with bytes changed, inserted, cut or spliced, and random bytes.
//! A failure names the target, the input and the broken check.

#[path = "../../fuzz/checks/mod.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Pseudo-random inputs per target, after its corpus.
const RANDOM_INPUTS: usize = 3000;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// xorshift64*: a fixed sequence per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn for_target(name: &str) -> Self {
        // FNV-1a of the name, so each target has its own sequence.
        Self(name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    fn byte(&mut self) -> u8 {
        // Bytes that matter to the parsers under test come up often.
        const INTERESTING: &[u8] = b"\0\n\r\t \"'.,-=:[]{}0159xo\x7f\x80\xbf\xc2\xe4\xf0\xff";
        if self.below(3) == 0 { INTERESTING[self.below(INTERESTING.len())] } else { self.next() as u8 }
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        (0..self.below(max + 1)).map(|_| self.byte()).collect()
    }
}

/// One corpus file changed a little, or spliced with another.
fn mutate(rng: &mut Rng, corpus: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut input = corpus[rng.below(corpus.len())].1.clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(5) {
            0 if at < input.len() => input[at] = rng.byte(),
            1 => {
                let extra = rng.bytes(8);
                input.splice(at..at, extra);
            }
            2 => input.truncate(at),
            3 if at < input.len() => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                input.drain(at..end);
            }
            _ => {
                let other = &corpus[rng.below(corpus.len())].1;
                let from = rng.below(other.len() + 1);
                input.splice(at..at, other[from..].iter().copied());
            }
        }
    }
    input
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a corpus entry").path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).expect("a corpus file"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

/// Runs `target`'s check on its corpus and on random inputs; returns how many inputs ran.
fn smoke(target: &str) -> usize {
    let check = checks::TARGETS.iter().find(|(name, _)| *name == target).expect("a known target").1;
    let run = |what: &str, input: &[u8]| {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(input))) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            panic!("{target}: {what} broke a check ({why}); input: b\"{}\"", input.escape_ascii());
        }
    };
    let corpus = corpus(target);
    for (name, input) in &corpus {
        run(&format!("corpus file {name}"), input);
    }
    let mut rng = Rng::for_target(target);
    for index in 0..RANDOM_INPUTS {
        let input = if index % 4 == 0 { rng.bytes(256) } else { mutate(&mut rng, &corpus) };
        run(&format!("random input {index}"), &input);
    }
    corpus.len() + RANDOM_INPUTS
}

macro_rules! smoke_tests {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                let count = smoke(stringify!($target));
                println!("{}: {count} inputs", stringify!($target));
            }
        )*

        /// Every cargo-fuzz target has its check, its corpus and a test here, and nothing else
        /// is listed.
        #[test]
        fn every_fuzz_target_is_smoke_tested() {
            let tested = [$(stringify!($target)),*];
            let mut targets: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
                .expect("fuzz/fuzz_targets")
                .map(|entry| entry.expect("an entry").path().file_stem().unwrap().to_string_lossy().into_owned())
                .collect();
            targets.sort();
            let checked: Vec<&str> = checks::TARGETS.iter().map(|(name, _)| *name).collect();
            assert_eq!(targets, checked, "fuzz/fuzz_targets/ and fuzz/checks/ TARGETS differ");
            assert_eq!(
                tested.as_slice(),
                checked.as_slice(),
                "tests/integration/fuzz_smoke.rs and fuzz/checks/ TARGETS differ"
            );
            let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
            for target in &targets {
                assert!(manifest.contains(&format!("name = \"{target}\"")), "fuzz/Cargo.toml has no [[bin]] {target}");
                assert!(!corpus(target).is_empty());
            }
        }
    };
}

smoke_tests!(address, asciicast, client_message, config, enter_request, range, spool, utf8_carry, winch);
