#!/usr/bin/env bash
# Coverage-guided fuzzing of what crosses a trust boundary, with afl.rs
# (AFL++ driven by stable Rust's SanitizerCoverage instrumentation).
#
#   schema/fuzz/run.sh [SECONDS_PER_TARGET | --execs N] [TARGET...]
#   schema/fuzz/run.sh --cmin [TARGET...]   # fold the last run's queue into corpus/
#                                           # (afl-showmap + reduce.py: the 200 that reach most edges)
#
# Targets: frame logbatch manifest expr exec_line (default: all, in turn).
# Each runs alone on one core at nice 19, from corpus/<target> (plus
# regressions/<target>, which must no longer crash) into out/<target>;
# at the end a table gives executions, exec/s, edges, crashes, hangs and the
# queue's size per target (also written to out/summary.md). Crashing
# inputs are in out/<target>/default/crashes/. Default: 60 s per target.
#
# The test suite never fuzzes: `cargo test` here (or the workspace's
# fuzz_corpus test, where it is wired) replays corpus/ and regressions/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
export CARGO_TARGET_DIR="$here/target"
all=(frame logbatch manifest expr exec_line)

mode=time
limit=60
if [[ ${1:-} == --execs ]]; then
  mode=execs
  limit=${2:?--execs needs a number}
  shift 2
elif [[ ${1:-} == --cmin ]]; then
  mode=cmin
  shift
elif [[ ${1:-} =~ ^[0-9]+$ ]]; then
  limit=$1
  shift
elif [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,18p' "$0"
  exit 0
fi
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "unknown target $t (one of: ${all[*]})" >&2; exit 2; }
done

# afl.rs: cargo-afl from crates.io builds AFL++ from the source it ships.
if ! cargo afl --version >/dev/null 2>&1; then
  echo "== installing cargo-afl"
  nice -n 19 cargo install cargo-afl --version '^0.18' --locked
fi
if ! ls "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/rustc-*/afl.rs-*/afl/bin/afl-fuzz >/dev/null 2>&1; then
  echo "== building AFL++"
  nice -n 19 cargo afl config --build
fi

echo "== building the instrumented targets ($CARGO_TARGET_DIR)"
nice -n 19 cargo afl build --release --locked --features afl --bins -j "${CARGO_BUILD_JOBS:-1}"

if [[ $mode == cmin ]]; then
  # afl-showmap traces every input of corpus/ and the last run's queue;
  # reduce.py keeps the ${CORPUS_MAX:-200} that together reach the most
  # edges. (afl-cmin keeps one input per edge and hit-count bucket, which
  # is thousands here, and the Python afl-cmin that `cargo afl cmin` runs
  # records no tuples from these binaries.)
  bin=$(ls -d "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/rustc-*/afl.rs-*/afl/bin | tail -1)
  for t in "${targets[@]}"; do
    queue=out/$t/default/queue
    [[ -d $queue ]] || { echo "no $queue: run the fuzzer first" >&2; exit 1; }
    all_in=out/$t.all
    rm -rf "$all_in" "out/$t.maps" "out/$t.red"
    mkdir -p "$all_in"
    cp corpus/"$t"/* "$all_in"/
    for f in "$queue"/id:*; do cp "$f" "$all_in/q${f##*/id:}"; done
    AFL_SKIP_BIN_CHECK=1 nice -n 19 "$bin/afl-showmap" -i "$all_in" -o "out/$t.maps" -t 1000 -q \
      -- "target/release/fuzz_$t" >/dev/null 2>&1 || true
    echo -n "$t: $(ls "$all_in" | wc -l) inputs, "
    python3 reduce.py "out/$t.maps" "$all_in" "out/$t.red" "${CORPUS_MAX:-200}"
    [[ -n $(ls "out/$t.red") ]] || { echo "$t: nothing kept, corpus/$t left as it was" >&2; exit 1; }
    rm -rf "corpus/$t"
    cp -r "out/$t.red" "corpus/$t"
  done
  exit 0
fi

export AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1 AFL_QUIET=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CRASHES=1 AFL_IGNORE_SEED_PROBLEMS=1
mkdir -p out
stat() { grep -E "^$2 +:" "$1" | sed 's/.*: //'; }
summary=out/summary.md
{
  echo "| target | executions | exec/s | edges (of map) | crashes | hangs | queue |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
} >"$summary"
for t in "${targets[@]}"; do
  echo "== fuzz_$t: $mode $limit"
  rm -rf "out/$t"
  seeds=$(mktemp -d)
  cp corpus/"$t"/* "$seeds"/
  [[ -d regressions/$t ]] && cp regressions/"$t"/* "$seeds"/ 2>/dev/null || true
  dict=()
  [[ -f dict/$t.dict ]] && dict=(-x "dict/$t.dict")
  if [[ $mode == execs ]]; then stop=(-E "$limit"); else stop=(-V "$limit"); fi
  nice -n 19 cargo afl fuzz -i "$seeds" -o "out/$t" -t 1000 "${dict[@]}" "${stop[@]}" \
    "target/release/fuzz_$t" >"out/$t.log" 2>&1 || { tail -20 "out/$t.log"; exit 1; }
  rm -rf "$seeds"
  s=out/$t/default/fuzzer_stats
  line="| $t | $(stat "$s" execs_done) | $(stat "$s" execs_per_sec) | $(stat "$s" edges_found) ($(stat "$s" bitmap_cvg)) | $(stat "$s" saved_crashes) | $(stat "$s" saved_hangs) | $(stat "$s" corpus_count) |"
  echo "$line" >>"$summary"
  echo "$line"
done
echo
cat "$summary"
