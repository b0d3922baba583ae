#!/usr/bin/env bash
# Render a lab run's worksheet as PDF with the wizard and check that pdftotext reads back
# every value the run recorded (strings and whole numbers of worksheet.json; throughput
# figures are printed rounded and are skipped).
#
#   tests/lab/check-worksheet-pdf.sh WIZARD STATE_DIR [OUT.pdf]
#
# STATE_DIR is a lab run's copy of /var/lib/iser-wizard (OUT/attach/lab-results/wizard-state).
# Each page is also rendered with pdftoppm, for people to look at: OUT-1.png, OUT-2.png, ...
# beside OUT.pdf (a page with no ink fails the check).
# Needs pdftotext and pdftoppm (poppler-utils) and python3.
set -euo pipefail
wizard=$1
state=$2
pdf=${3:-$(mktemp --suffix=.pdf)}
command -v pdftotext >/dev/null || { echo "check-worksheet-pdf: pdftotext is not installed (poppler-utils)" >&2; exit 2; }
"$wizard" worksheet --format pdf --state-dir "$state" --out "$pdf"
pdftotext -raw "$pdf" - | python3 -c '
import json, sys
sheet = json.load(open(sys.argv[1]))
text = "".join(sys.stdin.read().split())
values = []
def walk(v, path):
    if isinstance(v, dict):
        for k, x in v.items():
            if k not in ("write_mb_s", "read_mb_s"):
                walk(x, path + "." + k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            walk(x, "%s[%d]" % (path, i))
    elif isinstance(v, bool) or v is None or isinstance(v, float):
        pass
    else:
        values.append((path, str(v)))
walk(sheet, "")
missing = [(p, v) for p, v in values if "".join(v.split()) not in text]
for p, v in missing:
    print("missing from the PDF: %s = %r" % (p, v))
print("worksheet PDF: %d of %d recorded values read back" % (len(values) - len(missing), len(values)))
sys.exit(1 if missing or not values else 0)
' "$state/worksheet.json"

# The pages as images (100 dpi), and a coarse grey render to check each has ink on it.
pdftoppm -png -r 100 "$pdf" "${pdf%.pdf}"
pdftoppm -gray -r 20 "$pdf" "${pdf%.pdf}-ink"
for pgm in "${pdf%.pdf}"-ink-*.pgm; do
	python3 - "$pgm" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
# Binary PGM: "P5", width, height, maxval, then one byte per pixel.
fields = data.split(maxsplit=4)
w, h = int(fields[1]), int(fields[2])
pixels = fields[4][-(w * h):]
dark = sum(1 for p in pixels if p < 128)
share = dark / (w * h)
print("%s: %dx%d, %.1f%% dark pixels" % (sys.argv[1], w, h, 100 * share))
sys.exit(0 if share > 0.005 else 1)
PY
	rm -f "$pgm"
done
echo "worksheet pages for people to look at: ${pdf%.pdf}-*.png"
