#!/usr/bin/env bash
# Prints the figures of a fuzz run (fuzz/run.sh's logs in DIR/logs, default build/fuzz) as the
# markdown table docs/RELIABILITY.md keeps: executions, seconds, rate, crashes (inputs saved
# under DIR/crashes), corpus size, coverage (libFuzzer's "cov", edges reached) and peak RSS.
# A target still running shows its latest status line.
set -u
dir=${1:-build/fuzz}
echo "| target | executions | seconds | executions/s | crashes | corpus | coverage (edges) | peak RSS (MB) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for log in "$dir"/logs/*.log; do
  fmt=$(basename "$log" .log)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  if [ -z "$execs" ]; then # still running (or killed): the last status line
    execs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
    rss=$(echo "$last" | sed -n 's/.*rss: \([0-9]*\)Mb.*/\1/p')
    secs="running"
  fi
  crashes=$(find "$dir/crashes" -name "$fmt-*" -type f 2>/dev/null | wc -l)
  corpus=$(find "$dir/corpus/$fmt" -type f 2>/dev/null | wc -l)
  rate="-"
  [[ "$secs" =~ ^[0-9]+$ ]] && [ "$secs" -gt 0 ] && rate=$(( ${execs:-0} / secs ))
  echo "| $fmt | ${execs:-?} | $secs | $rate | $crashes | $corpus | ${cov:-?} | ${rss:-?} |"
done
