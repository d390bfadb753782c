#!/usr/bin/env bash
# Side-by-side benchmark of our generated networks against PyTorch, ONNX Runtime and TorchSharp.
#
#     bash tests/Benchmarks/compare.sh [--quick] [--threads 1,2] [--models A,B] [--rounds N]
#
# For each round and each network it runs, one after the other (never two at once): our benchmark
# (Program.cs, peer=unrolled), the PyTorch twin (peers/twins.py), ONNX Runtime on that twin's ONNX export
# (shared/peers/ort/run.sh --onnx-dir) and TorchSharp (shared/peers/torchsharp/run.sh, with peers/suite.spec
# for the suite networks). Every result line goes to a log; at the end a table gives, per network, mode and
# thread count, the median img/s of each peer over the rounds, our GFLOP/s and % of the FMA peak, and
# ours ÷ peer (above 1: we are faster), plus a geometric-mean row per mode. Defaults: all 12 networks,
# threads 1,2, 3 rounds. Needs /usr/bin/python3 with python3-torch, the .NET 10 SDK and the NuGet feed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shared="${UNROLLED_SHARED:-$(cd "$here/../../.." && pwd)/shared}"
torch_python="${PYTHON:-/usr/bin/python3}"
standard="LeNet5,SimpleConvNet,KerasBaseline,CifarVgg"
models="$standard,AlexNetSmall,AllConv,TanhLeNet,ResStem,Wide,BnVgg,OddSizes,SoftmaxHead"
threads="1,2"; rounds=3; quick=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=(--quick) ;;
        --threads) threads="$2"; shift ;;
        --models) models="$2"; shift ;;
        --rounds) rounds="$2"; shift ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

work="$(mktemp -d /tmp/unrolled_compare.XXXXXX)"
log="$work/results.log"
echo "# log and ONNX files in $work" >&2

# Our benchmark, built once (other work in the tree may break the build for a moment: retry).
for attempt in 1 2 3 4 5; do
    if dotnet build -c Release "$here/Benchmarks.csproj" -nologo -v q > "$work/build.log" 2>&1; then break; fi
    if [ "$attempt" = 5 ]; then tail -n 20 "$work/build.log" >&2; echo "compare.sh: build failed" >&2; exit 1; fi
    echo "# build failed (attempt $attempt), retrying in 60 s" >&2; sleep 60
done
ours="$here/bin/Release/net10.0/Benchmarks.dll"

# The PyTorch twins exported to ONNX (opset 13, dynamic batch) for ONNX Runtime.
"$torch_python" "$here/peers/twins.py" --export-onnx "$work/onnx" --models "$models" 2> "$work/export.log" \
    || { cat "$work/export.log" >&2; exit 1; }
grep 'parameters=' "$work/export.log" >&2

for round in $(seq 1 "$rounds"); do
    for m in ${models//,/ }; do
        echo "# round $round/$rounds: $m" >&2
        spec=(--spec "$here/peers/suite.spec")
        case ",$standard," in *",$m,"*) spec=() ;; esac   # the four standard ones are TorchSharp's built-in spec
        dotnet "$ours" --models "$m" --threads "$threads" "${quick[@]}" >> "$log" 2>> "$work/stderr.log"
        "$torch_python" "$here/peers/twins.py" --models "$m" --threads "$threads" "${quick[@]}" >> "$log" 2>> "$work/stderr.log"
        bash "$shared/peers/ort/run.sh" --onnx-dir "$work/onnx" --models "$m" --threads "$threads" "${quick[@]}" >> "$log" 2>> "$work/stderr.log"
        bash "$shared/peers/torchsharp/run.sh" "${spec[@]}" --models "$m" --threads "$threads" "${quick[@]}" >> "$log" 2>> "$work/stderr.log"
    done
done

cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
python3 - "$log" "$models" "$cpu" <<'PY'
import math, re, statistics, sys
log, models, cpu = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
peers = [("pytorch", "PyTorch"), ("onnxruntime", "ORT"), ("torchsharp", "TorchSharp")]
runs, gflops, pct, peak = {}, {}, {}, []
for line in open(log):
    if line.startswith("fma_peak"):
        peak.append(float(re.search(r"gflops=([\d.]+)", line).group(1)))
    if not line.startswith("peer="):
        continue
    f = dict(kv.split("=", 1) for kv in line.split())
    key = (f["model"], f["mode"], int(f["batch"]), int(f["threads"]))
    runs.setdefault((f["peer"],) + key, []).append(float(f["img_per_s"]))
    if f["peer"] == "unrolled":
        gflops.setdefault(key, []).append(float(f["gflops"]))
        pct.setdefault(key, []).append(float(f["peak_pct"]))
med = lambda xs: statistics.median(xs) if xs else None
print(f"CPU: {cpu}")
print(f"FMA peak (one core, measured by our benchmark, median of runs): {med(peak):.1f} GFLOP/s" if peak else "FMA peak: not measured")
print("img/s are medians over the rounds; ratio = ours / peer (above 1: ours faster)")
head = ["network", "mode", "threads", "ours img/s", "GFLOP/s", "% peak"]
for _, name in peers:
    head += [name, "×" + name]
rows, ratios = [], {}
keys = sorted({k[1:] for k in runs if k[0] == "unrolled"}, key=lambda k: (models.index(k[0]) if k[0] in models else 99, k[3], k[1] != "train", k[2]))
fmt = lambda x: "–" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.1f}")
for key in keys:
    model, mode, batch, t = key
    ours = med(runs[("unrolled",) + key])
    row = [model, f"{mode} {batch}", str(t), fmt(ours), f"{med(gflops[key]):.2f}", f"{med(pct[key]):.1f}"]
    for peer, _ in peers:
        p = med(runs.get((peer,) + key, []))
        row += [fmt(p), "–" if p is None else f"{ours / p:.2f}"]
        if p:
            ratios.setdefault((f"{mode} {batch}", t, peer), []).append(ours / p)
    rows.append(row)
for mode in sorted({(r[1], int(r[2])) for r in rows}, key=lambda m: (m[1], m[0] != "train 64", m[0])):
    row = ["geomean", mode[0], str(mode[1]), "", "", ""]
    for peer, _ in peers:
        rs = ratios.get((mode[0], mode[1], peer))
        row += ["", "–" if not rs else f"{math.exp(sum(map(math.log, rs)) / len(rs)):.2f}"]
    rows.append(row)
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for r in rows:
    print("| " + " | ".join(r) + " |")
PY
echo "# raw lines: $log" >&2
