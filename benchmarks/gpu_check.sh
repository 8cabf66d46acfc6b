#!/usr/bin/env bash
# CUDA checks and timings for a machine with a GPU (none of this runs in CI).
#
#   bash benchmarks/gpu_check.sh OUT_DIR [tests|eval|train|extract|dist ...]   (default: all parts)
#
# Uses the python3 on PATH with visrec importable (pip install -e '.[dev]', or PYTHONPATH=src:tests).
# Each part writes OUT_DIR/<part>.log; a failing part does not stop the others; the exit code is the
# number of failed parts.
set -u
out=${1:?usage: gpu_check.sh OUT_DIR [parts]}
shift
parts=${*:-tests eval train extract dist}
mkdir -p "$out"
py=${PYTHON:-python3}
failed=0

run_part() {
    local name=$1
    shift
    echo "== $name" >"$out/$name.log"
    if ! "$@" >>"$out/$name.log" 2>&1; then
        echo "   FAILED (see $out/$name.log)"
        failed=$((failed + 1))
    fi
    tail -n 25 "$out/$name.log"
}

part_tests() {  # the CUDA tests, then the whole suite with device=auto picking the GPU
    $py -m pytest -q -p no:cacheprovider -m gpu -rs &&
        $py -m pytest -q -p no:cacheprovider -m "not browser and not realdata" --timeout 300
}

part_eval() {
    $py benchmarks/eval_speed.py --case wikimedia --device cuda &&
        $py benchmarks/eval_speed.py --case wikimedia &&
        $py benchmarks/eval_speed.py --case catalogue
}

part_train() {  # speeds, then optimizer=sparse_adam (lazy Adam, sparse embedding gradients) on CUDA
    local work
    work=$(mktemp -d)
    $py benchmarks/train_speed.py --only vbpr,dvbpr --quick &&
        $py -m visrec data demo "$work/demo" &&
        $py -m visrec extract "$work/demo/images" -o "$work/features" --weights none &&
        $py -m visrec train vbpr --data "$work/demo" --features "$work/features" -o "$work/vbpr" \
            --set epochs=3 --set batch_size=100 --set optimizer=sparse_adam --set device=cuda &&
        $py -m visrec evaluate "$work/vbpr" --mode full &&
        $py -m visrec train dvbpr --data "$work/demo" -o "$work/dvbpr-t" --set device=cuda \
            --set backbone=efficientnet_lite0 --set freeze_backbone=true --set latent_dim=0 \
            --set image_size=224 --set epochs=3 &&  # DVBPR on a fixed pretrained trunk
        mkdir -p "$work/new" &&
        for f in $(ls "$work/demo/images" | head -n 2); do cp "$work/demo/images/$f" "$work/new/new-$f"; done &&
        $py -m visrec recommend "$work/dvbpr-t" --new-items "$work/new" -k 3
}

part_extract() {
    $py benchmarks/extract_speed.py --backbone resnet50 --n-large 400 --n-small 400
}

part_dist() {  # torchrun with NCCL (one rank per GPU) on the demo data: train, then evaluate
    local work
    work=$(mktemp -d)
    local gpus
    gpus=$($py -c "import torch; print(max(1, torch.cuda.device_count()))")
    $py -m visrec data demo "$work/demo" &&
        $py -m visrec extract "$work/demo/images" -o "$work/features" --weights none &&
        torchrun --standalone --nproc-per-node "$gpus" -m visrec train vbpr --data "$work/demo" \
            --features "$work/features" -o "$work/vbpr" --set epochs=5 &&
        torchrun --standalone --nproc-per-node "$gpus" -m visrec evaluate "$work/vbpr" \
            --mode full --mode tutorial
}

for part in $parts; do
    run_part "$part" "part_$part"
done
exit "$failed"
