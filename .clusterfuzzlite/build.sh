#!/bin/bash -eu
# ClusterFuzzLite (OSS-Fuzz) build: every cargo-fuzz target in fuzz/, with its seed corpus
# and the dictionary, into $OUT.
#
#   $OUT/<target>                   the libFuzzer binary
#   $OUT/<target>_seed_corpus.zip   fuzz/corpus/<target>/ and fuzz/regressions/<target>/
#   $OUT/<target>.dict              fuzz/rotorlink.dict
#
# `cargo fuzz build` passes `--cfg fuzzing`, so OPAQUE's Argon2id is replaced by its cheap
# stand-in (link/src/handshake/pake.rs) in these binaries, as in every fuzz build; never in a
# release. Debug assertions and overflow checks stay on (`--debug-assertions`), as in local
# fuzzing. The image's cargo wrapper adds the sanitizer ($SANITIZER).
#
# Without Docker (stable Rust, no sanitizer), from the repository root:
#   ROTORLINK_SRC=$PWD OUT=/tmp/cflite-out FUZZ_SANITIZER=none bash .clusterfuzzlite/build.sh
cd "${ROTORLINK_SRC:-$SRC/rotorlink}/fuzz"

cargo fuzz build -O --debug-assertions ${FUZZ_SANITIZER:+--sanitizer "$FUZZ_SANITIZER"}

bin=target/x86_64-unknown-linux-gnu/release
mkdir -p "$OUT"
targets=$(cargo fuzz list)
for target in $targets; do
    cp "$bin/$target" "$OUT/"
    cp rotorlink.dict "$OUT/$target.dict"
    corpus="$OUT/${target}_seed_corpus.zip"
    rm -f "$corpus"
    for dir in "corpus/$target" "regressions/$target"; do
        if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
            # -j: flat, as libFuzzer reads it; a regression named like a seed is kept apart.
            (cd "$dir" && zip -q -j "$corpus" ./*)
        fi
    done
    [ -f "$corpus" ] || { echo "no seed corpus for fuzz target $target" >&2; exit 1; }
done
echo "built: $(echo $targets)"
