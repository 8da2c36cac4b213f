#!/usr/bin/env bash
# run.sh -- media benchmark: a 12-megapixel phone JPEG through resize-image's whole variant set
# (bench-variants: variants_make from services/resize-image, release build) beside ImageMagick's
# convert making the same 8 files in one invocation, in the same run on the same machine:
# median and p90 wall time, median peak RSS, median CPU time, and the ratios.
#
#   make bench      (or: BENCH_RUNS=25 bench/media/run.sh)
#
# BENCH_RUNS (15): runs of each tool, interleaved (ours, ImageMagick, ours, ...) after one warm-up
# of each, so both see the same noise. BENCH_RECORD=0: print the block, do not add it to
# bench/RESULTS.md. BENCH_IM_DEFINE (webp:method=1): one more row, ImageMagick with that
# -define: by default its WebP encoder at the effort ours uses (MEDIA_WEBP_EFFORT=1), the
# like-for-like reference; "jpeg:size=1440x1080" lets libjpeg decode at a smaller scale, as
# libvips's shrink-on-load does (the size is in stored orientation); empty: no such row.
# RESIZE_IMAGE_VIPS_THREADS (2, the daemon's default) reaches bench-variants.
#
# The input is made once into var/bench-media/photo-12mp.jpg: 4000x3000 plasma with Gaussian
# noise (photo-like entropy), JPEG quality 90, 4:2:0, an sRGB ICC profile and a phone's EXIF
# with Orientation 6 and a GPS position (bench/media/photo.py); upright it is 3000x4000.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
. "$ROOT/bench/lib.sh"
RUNS="${BENCH_RUNS:-15}"
RECORD="${BENCH_RECORD:-1}"
IM_DEFINE="${BENCH_IM_DEFINE-webp:method=1}"
VAR="$ROOT/var/bench-media"
IN="$VAR/photo-12mp.jpg"
BIN="$ROOT/build/release/bin/bench-variants"
RESULTS="$ROOT/bench/RESULTS.md"
MARKER="<!-- bench/media/run.sh adds each run below this line, newest first -->"

die() {
    echo "bench/media: $*" >&2
    exit 1
}

# The real binaries: a wrapper earlier in PATH would be timed too.
CONVERT=/usr/bin/convert
IDENTIFY=/usr/bin/identify
[ -x "$CONVERT" ] || CONVERT="$(command -v convert)" || die "ImageMagick is missing (apt package imagemagick, deploy/local/setup.sh)"
[ -x "$IDENTIFY" ] || IDENTIFY="$(command -v identify)"
/usr/bin/time -f %e true 2>/dev/null || die "GNU time (/usr/bin/time) is missing (apt package time, deploy/local/setup.sh)"
[ -x "$BIN" ] || die "$BIN is missing: make bench-binaries"

# IM6 may read WebP but not write it without its delegate: then ImageMagick makes the JPEGs only.
IM_WEBP=1
"$CONVERT" -list format | grep -Eq '^ *WEBP\*? +WEBP +rw' || IM_WEBP=0

mkdir -p "$VAR/ours" "$VAR/im" "$VAR/im-define"
if [ ! -s "$IN" ]; then
    echo "bench/media: making $IN (once, about 15 s)" >&2
    python3 "$ROOT/bench/media/photo.py" icc "$VAR/srgb.icc"
    "$CONVERT" -size 4000x3000 -seed 42 plasma:fractal -attenuate 0.3 +noise Gaussian \
        -profile "$VAR/srgb.icc" -sampling-factor 4:2:0 -quality 90 "$VAR/raw.jpg"
    python3 "$ROOT/bench/media/photo.py" exif "$VAR/raw.jpg" "$IN.tmp"
    mv "$IN.tmp" "$IN"
    rm -f "$VAR/raw.jpg"
fi

# im_args OUTDIR [DEFINE]: one convert invocation for the whole set into IM_ARGS. The file is
# decoded once; large is made from the upright original and kept in mpr:large, the others from
# it (as variants_make makes them from its large variant). No profile but ICC is kept, as ours.
im_args() {
    local o="$1" define="${2:-}"
    IM_ARGS=()
    [ -z "$define" ] || IM_ARGS+=(-define "$define")
    IM_ARGS+=("$IN" -auto-orient +profile '!icc,*' -resize '1080x>' -write mpr:large)
    local v
    for v in large medium small thumb; do
        [ "$v" = large ] || IM_ARGS+=(+delete mpr:large)
        case "$v" in
        large) IM_ARGS+=(-sampling-factor 4:4:4) ;;
        medium) IM_ARGS+=(+sampling-factor -resize '640x>') ;;
        small) IM_ARGS+=(-resize '320x>') ;;
        thumb) IM_ARGS+=(-thumbnail '150x150^' -gravity center -extent 150x150) ;;
        esac
        IM_ARGS+=(-quality 82 -write "$o/$v.jpg")
        [ "$IM_WEBP" = 0 ] || IM_ARGS+=(-quality 80 -write "$o/$v.webp")
    done
    IM_ARGS+=(null:)
}

# measure TSV CMD...: one run under GNU time; appends "wall_s peak_kib user_s sys_s [our_ms]".
measure() {
    local tsv="$1"
    shift
    /usr/bin/time -f '%e %M %U %S' -o "$VAR/time.txt" "$@" >"$VAR/stdout.txt"
    local ms=""
    [ "$1" != "$BIN" ] || ms="$(awk '$1 == "variants_make" { print $2 }' "$VAR/stdout.txt")"
    echo "$(cat "$VAR/time.txt") $ms" >>"$tsv"
}

run_ours() { measure "$VAR/ours.tsv" "$BIN" "$IN" "$VAR/ours"; }
run_im() {
    im_args "$VAR/im"
    measure "$VAR/im.tsv" "$CONVERT" "${IM_ARGS[@]}"
}
run_im_define() {
    im_args "$VAR/im-define" "$IM_DEFINE"
    measure "$VAR/im-define.tsv" "$CONVERT" "${IM_ARGS[@]}"
}

load_start="$(cut -d' ' -f1 /proc/loadavg)"
run_ours
run_im
[ -z "$IM_DEFINE" ] || run_im_define
rm -f "$VAR/ours.tsv" "$VAR/im.tsv" "$VAR/im-define.tsv" # the warm-ups do not count
for _ in $(seq "$RUNS"); do
    run_ours
    run_im
    [ -z "$IM_DEFINE" ] || run_im_define
done
load_end="$(cut -d' ' -f1 /proc/loadavg)"

# row NAME TSV: "| NAME | median ms | p90 ms | median peak RSS MB | median CPU s |"; sets MED_MS, MED_MB.
row() {
    local name="$1" tsv="$2" med p90 rss cpu
    read -r med p90 < <(bench_quantiles 1 <"$tsv")
    read -r rss _ < <(bench_quantiles 2 <"$tsv")
    read -r cpu _ < <(awk '{ print $3 + $4 }' "$tsv" | bench_quantiles 1)
    MED_MS="$(awk -v s="$med" 'BEGIN { printf "%.0f", s * 1000 }')"
    MED_MB="$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')"
    awk -v n="$name" -v m="$med" -v p="$p90" -v r="$rss" -v c="$cpu" \
        'BEGIN { printf "| %s | %.0f | %.0f | %.1f | %.2f |\n", n, m * 1000, p * 1000, r / 1024, c }'
}

# outputs DIR: "large 1080x1440 303 KB + 105 KB, ..." (JPEG + WebP) and which files carry EXIF.
outputs() {
    local d="$1" v list="" exif=""
    for v in large medium small thumb; do
        list+="$v $("$IDENTIFY" -format '%wx%h' "$d/$v.jpg") $(($(stat -c %s "$d/$v.jpg") / 1024))"
        [ ! -f "$d/$v.webp" ] || list+=" + $(($(stat -c %s "$d/$v.webp") / 1024))"
        list+=" KiB, "
        # JPEG: an APP1 "Exif\0\0" segment; WebP: an "EXIF" chunk.
        if grep -qaP 'Exif\x00\x00' "$d/$v.jpg"; then exif+=" $v.jpg"; fi
        if [ -f "$d/$v.webp" ] && grep -qa 'EXIF' "$d/$v.webp"; then exif+=" $v.webp"; fi
    done
    echo "${list%, }; EXIF in:${exif:- none}"
}

IM_WHAT="the same 8 files"
[ "$IM_WEBP" = 1 ] || IM_WHAT="the 4 JPEGs only (this ImageMagick cannot write WebP)"
resource() { "$CONVERT" -list resource | awk -v k="$1:" '$1 == k { print $2 }'; }
{
    echo "### $(date -u +%Y-%m-%d), $(date -u +%H:%MZ) (load average $load_start at the start, $load_end at the end)"
    echo
    echo "| tool | median ms | p90 ms | median peak RSS MB | median CPU s |"
    echo "|---|---|---|---|---|"
    row "ours: bench-variants (process: libvips start, read, variants_make, 8 files written)" "$VAR/ours.tsv"
    ours_ms="$MED_MS" ours_mb="$MED_MB"
    read -r vm_med vm_p90 < <(bench_quantiles 5 <"$VAR/ours.tsv")
    echo "| ours: variants_make alone (in the same runs) | $(printf '%.0f' "$vm_med") | $(printf '%.0f' "$vm_p90") | | |"
    row "ImageMagick convert, $IM_WHAT in one invocation" "$VAR/im.tsv"
    im_ms="$MED_MS" im_mb="$MED_MB"
    if [ -n "$IM_DEFINE" ]; then
        row "ImageMagick convert with -define $IM_DEFINE" "$VAR/im-define.tsv"
        ims_ms="$MED_MS" ims_mb="$MED_MB"
    fi
    echo
    awk -v a="$im_ms" -v b="$ours_ms" -v c="$ours_mb" -v d="$im_mb" -v v="$vm_med" 'BEGIN {
        printf "Ratios: ImageMagick / ours, median wall time: **%.2fx** (aim: at least 3x; %.2fx against variants_make alone); ", a / b, a / v
        printf "ours / ImageMagick, median peak RSS: **%.2f** (aim: at most 0.5).\n", c / d }'
    if [ -n "$IM_DEFINE" ]; then
        awk -v a="$ims_ms" -v b="$ours_ms" -v c="$ours_mb" -v d="$ims_mb" -v d2="$IM_DEFINE" 'BEGIN {
            printf "With -define " d2 ": ImageMagick / ours %.2fx, ours / ImageMagick RSS %.2f.\n", a / b, c / d }'
    fi
    echo
    echo "$RUNS runs of each, interleaved, after one warm-up each; \`/usr/bin/time -f '%e %M %U %S'\`" \
        "(CPU = user + sys). $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))." \
        "libvips $(pkg-config --modversion vips) with ${RESIZE_IMAGE_VIPS_THREADS:-2} threads;" \
        "$("$CONVERT" -version | awk 'NR == 1 { print $2, $3, $4 }'), policy limits: thread $(resource Thread)," \
        "memory $(resource Memory), map $(resource Map), area $(resource Area)." \
        "Input: $(basename "$IN"), $("$IDENTIFY" -format '%wx%h' "$IN") stored, $(($(stat -c %s "$IN") / 1024)) KiB."
    echo
    echo "Outputs, ours: $(outputs "$VAR/ours")."
    echo "Outputs, ImageMagick: $(outputs "$VAR/im")."
} >"$VAR/block.md"

cat "$VAR/block.md"
if [ "$RECORD" = 1 ]; then
    if grep -qxF "$MARKER" "$RESULTS"; then
        # After the marker, newest first, with a blank line between runs.
        awk -v m="$MARKER" -v f="$VAR/block.md" '
            { print }
            $0 == m { print ""; while ((getline l < f) > 0) print l }' "$RESULTS" >"$VAR/RESULTS.md.tmp"
        mv "$VAR/RESULTS.md.tmp" "$RESULTS"
    else
        { echo; cat "$VAR/block.md"; } >>"$RESULTS"
    fi
    echo "bench/media: added to bench/RESULTS.md" >&2
fi
