#!/bin/sh
# The README's first command: build, make the EICAR example, scan both examples with the
# embedded YARA-X engine (no daemon needed). Expected output:
#   examples/clean.eml: OK
#   examples/eicar.eml: Eicar-Test-Signature FOUND
set -eu
cd "$(dirname "$0")/.."
[ -f dist/bin/avfilter.js ] || npm run build >/dev/null
sh examples/make-eicar.sh
# The example config: built-in defaults with the embedded engine, whatever /etc holds.
status=0
node dist/bin/avfilter.js -f examples/avfilter.toml -t examples/clean.eml examples/eicar.eml || status=$?
if [ "$status" -eq 1 ]; then
  echo "(exit status 1: a virus was found, as expected)"
  exit 0
fi
echo "unexpected exit status $status" >&2
exit 1
