#!/usr/bin/env bash
# repro-lines.sh [DIR [TARGET]]: what replays a failed run, as Markdown, from its artifacts (DIR,
# default ${ARTIFACTS:-_artifacts}/latest): each failed spec with its `repro:` line (the suite
# writes it into the spec's output and failure message, which Ginkgo keeps in report.json), what
# failed outside the specs (a compile error, BeforeSuite), and the line that replays the whole run
# with its seed (`make TARGET SEED=...`, TARGET default e2e). The nightly workflow appends it to
# the job's summary when the night fails. Needs jq; prints what it can when files are missing.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=repro
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_cmd jq "install it: apt-get install jq"
dir="${1:-${ARTIFACTS:-${REPO_ROOT}/_artifacts}/latest}"
target="${2:-e2e}"

echo "### How to replay this failure"
echo
if [ ! -d "$dir" ]; then
  echo "No artifacts directory (\`${dir}\`): the run failed before the suite started; the job's log says why."
  exit 0
fi
dir=$(cd "$dir" && pwd -P)

seed=""
[ -s "${dir}/results.json" ] && seed=$(jq -r '.seed // empty' "${dir}/results.json" 2>/dev/null || true)
if [ -z "$seed" ] && [[ "$(basename "$dir")" =~ -seed([0-9]+) ]]; then seed=${BASH_REMATCH[1]}; fi

report="${dir}/report.json"
if [ -s "$report" ]; then
  # Ginkgo's report: failed It nodes with their repro lines, then failed suite nodes and the
  # reasons the suite could not run (a compile error).
  jq -r '
    def failed: .State as $s | ["failed", "panicked", "timedout", "interrupted", "aborted"] | index($s);
    def repro: [(.CapturedGinkgoWriterOutput // ""), (.Failure.Message // "")] | join("\n") | split("\n")
      | map(select(startswith("repro: ")) | ltrimstr("repro: ")) | unique;
    def firstline: (.Failure.Message // "") | split("\n") | map(select(length > 0)) | (.[0] // "");
    .[] |
    ([.SpecReports[]? | select(.LeafNodeType == "It" and failed)] as $specs |
     [.SpecReports[]? | select(.LeafNodeType != "It" and failed)] as $suite |
     (if ($specs | length) == 0 then "No spec failed." else "Failed specs, each with the line that replays it:", "" end),
     ($specs[] |
       "- **\(((.ContainerHierarchyTexts // []) + [.LeafNodeText]) | join(" "))** (\(.State)): \(firstline)",
       (repro[] | "  ```sh\n  \(.)\n  ```")),
     (if ($suite | length) > 0 then "", "Failed outside the specs:", "", ($suite[] | "- \(.LeafNodeType) (\(.State)): \(firstline)") else empty end),
     (if ((.SpecialSuiteFailureReasons // []) | length) > 0 then
        "", "The suite could not run:", "", "```", ((.SpecialSuiteFailureReasons // [])[] | rtrimstr("\n")), "```"
      else empty end))
  ' "$report" 2>/dev/null || echo "report.json could not be read: see \`summary.txt\` and the job's log."
else
  echo "No Ginkgo report (\`report.json\`) in \`${dir}\`: the suite did not finish; the job's log says why."
fi
if [ -s "${dir}/egress-why.txt" ]; then
  echo
  echo "The egress guard dropped packets during the run: \`egress-why.txt\` says which."
fi
echo
if [ -n "$seed" ]; then
  echo "The whole run again, with its seed:"
  echo
  echo '```sh'
  echo "make ${target} SEED=${seed}"
  echo '```'
else
  echo "The run's seed is unknown (no results.json, and the directory's name carries none)."
fi
echo
echo "Artifacts: \`$(basename "$dir")\` in the job's uploaded artifacts (\`summary.txt\`, \`report.html\`, each spec's \`violations.txt\`)."
