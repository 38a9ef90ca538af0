/* The three reports of a statistics snapshot (table, JSON, SVG), on
 * hand-built rill_stats: several queues and stages, names holding quotes,
 * markup, control characters and invalid UTF-8, zero, one and 100,000 depth
 * samples. The JSON and SVG are checked with real tools: python3's json
 * (json.tool, then values read back) and xmllint plus python3's XML parser.
 * CI installs both (scripts/deps.sh test); a missing tool fails the test. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"

#define R "\xef\xbf\xbd" /* U+FFFD, what an invalid byte becomes */
#define PIPE_NAME "ip \"stats\" <&> 'x' \\ \x01\t\n\xc3\xa9 \xff end"
/* PIPE_NAME as XML text: controls but tab/newline and invalid bytes replaced */
#define PIPE_XML "ip \"stats\" <&> 'x' \\ " R "\t\n\xc3\xa9 " R " end"
#define S1 "filter \"1\" <&>"
#define S2 "ctl\x01\x1f\t\x7f"
#define S3 "bad\xff\xc3(\xed\xa0\x80\xc0\xafz\xe2\x82"
/* S3 decoded: every byte outside a valid UTF-8 sequence is one U+FFFD */
#define S3_DECODED "bad" R R "(" R R R R R "z" R R
/* What the engine writes, with a name that needs escaping in every format. */
#define VERDICT S1 ": busy 50% of the run; everything after it idle 90%"
#define LONG_NAME "a-stage-name-much-longer-than-any-table-column-should-ever-be-0123456789"

/* ---- fixture ------------------------------------------------------------------ */

typedef struct fixture {
    rill_stats s;
    rill_stage_stats stages[5];
    rill_queue_stats queues[3];
    rill_depth_sample *samples;
} fixture;

static void fixture_init(fixture *f, size_t nsamples) {
    memset(f, 0, sizeof *f);
    static const char *const names[5] = {"source", S1, S2, S3, LONG_NAME};
    for (int i = 0; i < 5; i++) {
        f->stages[i].name = names[i];
        f->stages[i].threaded = i < 4;
        f->stages[i].items_in = 1000u * (unsigned)i;
        f->stages[i].items_out = 1000u * (unsigned)i + 7;
        f->stages[i].busy_ns = 100000000ull * (unsigned)i; /* of 2 s */
        f->stages[i].thread = i < 4 ? i : 0; /* the last one inline on source's */
        f->stages[i].measured = true;
        f->stages[i].thread_busy_ns = f->stages[i].busy_ns;
        f->stages[i].thread_cpu_ns = f->stages[i].busy_ns / 2;
        f->stages[i].thread_wait_ns = 300000000ull;
        f->stages[i].thread_life_ns = 1900000000ull;
    }
    f->stages[1].busy_ns = 1000000000ull; /* the bottleneck: busy 50% */
    static const unsigned policy[3] = {RILL_OVERFLOW_BLOCK, RILL_OVERFLOW_DROP_NEWEST,
                                       RILL_OVERFLOW_DROP_OLDEST};
    for (int k = 0; k < 3; k++) {
        rill_queue_stats *q = &f->queues[k];
        q->from = names[k];
        q->to = names[k + 1];
        q->policy = policy[k];
        q->capacity = 1000;
        q->depth = 10u * (unsigned)k;
        q->high_water = 900;
        q->in = 5000 + (unsigned)k;
        q->out = 4000;
        q->batches = 20;
        q->wait_full_ns = 12345678;
        q->wait_empty_ns = 2500000;
        q->samples = 100;
        q->bands[k == 0 ? 9 : 0] = 100; /* the first queue runs 95% full */
        q->depth_sum = k == 0 ? 100 * (q->capacity * 95 / 100) : 0;
    }
    f->queues[2].in = UINT64_MAX;
    f->queues[2].dropped = UINT64_MAX - 1;
    f->s.pipeline = PIPE_NAME;
    f->s.elapsed_ns = 2000000000ull;
    f->s.nstages = 5;
    f->s.stages = f->stages;
    f->s.nqueues = 3;
    f->s.queues = f->queues;
    f->s.sample_interval_ns = 20000;
    f->s.bottleneck = 1;
    snprintf(f->s.verdict, sizeof f->s.verdict, "%s", VERDICT);
    f->samples = calloc(nsamples ? nsamples : 1, sizeof *f->samples);
    f->s.samples = f->samples;
    f->s.nsamples = f->samples ? nsamples : 0;
    for (size_t i = 0; f->samples && i < nsamples; i++) {
        uint32_t k = (uint32_t)(i % 3);
        f->samples[i].t_ns = f->s.elapsed_ns / (nsamples + 1) * (i + 1);
        f->samples[i].queue = k;
        f->samples[i].depth = k == 0 ? (uint32_t)(i % 7) : k == 1 ? 500 : (uint32_t)(i % 1001);
    }
}

/* ---- tools ------------------------------------------------------------------- */

static int need(const char *tool) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    if (system(cmd) == 0)
        return 0;
    rill_test__failf(__FILE__, __LINE__, "%s is not installed: the report tests need it "
                     "(scripts/deps.sh test installs python3 and libxml2-utils)", tool);
    return -1;
}

static void tmp_path(char *out, size_t n, const char *what) {
    snprintf(out, n, "%s/stats_report_%d_%s", RILL_TEST_TMP, (int)getpid(), what);
}

/* Write a report of s into a temp file named after what. */
static int write_report(int (*fn)(const rill_stats *, FILE *), const rill_stats *s,
                        const char *what, char *path, size_t n) {
    tmp_path(path, n, what);
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    int rc = fn(s, f);
    return fclose(f) != 0 && rc == 0 ? -errno : rc;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    if (!f)
        return NULL;
    do {
        if (n + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = 2 * cap + 8192);
            if (!nb)
                break;
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
    } while (r > 0);
    fclose(f);
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

/* Run a python3 script on file; its stdout holds fields separated by NUL
 * bytes, split into field[] (at most max). Returns the count or -1. */
enum { MAXF = 64 };
static char pyout[1 << 16];
static int python_fields(const char *script, const char *file, const char *field[], int max) {
    char spath[512], cmd[1200];
    tmp_path(spath, sizeof spath, "check.py");
    FILE *sf = fopen(spath, "w");
    if (!sf || fputs(script, sf) < 0 || fclose(sf) != 0)
        return -1;
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s'", spath, file);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(pyout, 1, sizeof pyout - 1, p);
    int status = pclose(p);
    unlink(spath);
    if (status != 0)
        return -1;
    pyout[n] = 0;
    int nf = 0;
    for (size_t i = 0; i <= n && nf < max; i += strlen(pyout + i) + 1)
        field[nf++] = pyout + i;
    return nf;
}

static int shell_ok(const char *tool, const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s '%s'", tool, path);
    return system(cmd) == 0;
}

/* ---- JSON ---------------------------------------------------------------------- */

static const char json_check[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1], encoding='utf-8'))\n"
    "assert set(d) == {'pipeline', 'elapsed_ns', 'running', 'sample_interval_ns',\n"
    "                  'bottleneck', 'verdict', 'queues', 'stages', 'samples'}, sorted(d)\n"
    "qkeys = {'from', 'to', 'policy', 'capacity', 'depth', 'ready', 'unpublished',\n"
    "         'high_water', 'in', 'out', 'dropped', 'discarded', 'batches', 'wait_full_ns',\n"
    "         'wait_empty_ns', 'samples', 'depth_sum', 'ready_sum', 'unpublished_sum',\n"
    "         'bands'}\n"
    "skeys = {'name', 'threaded', 'items_in', 'items_out', 'busy_ns', 'input_depth',\n"
    "         'input_capacity', 'thread', 'measured', 'thread_busy_ns', 'thread_cpu_ns',\n"
    "         'thread_wait_ns', 'thread_runq_ns', 'thread_life_ns'}\n"
    "for q in d['queues']:\n"
    "    assert set(q) == qkeys, sorted(q)\n"
    "    assert len(q['bands']) == 10 and all(type(b) is int for b in q['bands'])\n"
    "    assert all(type(q[k]) is int for k in qkeys - {'from', 'to', 'policy', 'bands'})\n"
    "for s in d['stages']:\n"
    "    assert set(s) == skeys, sorted(s)\n"
    "    assert type(s['threaded']) is bool and type(s['measured']) is bool\n"
    "    assert s['thread'] is None or s['thread'] in [t['name'] for t in d['stages']]\n"
    "assert all(len(x) == 3 and all(type(v) is int for v in x) for x in d['samples'])\n"
    "out = [len(d['queues']), len(d['stages']), len(d['samples']), d['pipeline'],\n"
    "       d['bottleneck'], d['running'], d['elapsed_ns'],\n"
    "       sum(x[0] for x in d['samples']) % 2**64, sum(x[2] for x in d['samples'])]\n"
    "out += [s['name'] for s in d['stages']]\n"
    "for q in d['queues']:\n"
    "    out += [q['from'], q['to'], q['policy'], q['in'], q['dropped'], sum(q['bands'])]\n"
    "out += [d['verdict']]\n"
    "sys.stdout.buffer.write(b'\\0'.join(str(x).encode('utf-8') for x in out))\n";

static void check_json(fixture *f, const char *what) {
    char path[512], want[64];
    const char *v[MAXF];
    if (need("python3"))
        return;
    CHECK_OK(write_report(rill_stats_write_json, &f->s, what, path, sizeof path));
    CHECK(shell_ok("python3 -m json.tool >/dev/null", path));
    int n = python_fields(json_check, path, v, MAXF);
    CHECK_EQ(n, 9 + 5 + 3 * 6 + 1);
    CHECK_STREQ(v[32], f->s.verdict);
    snprintf(want, sizeof want, "%zu", f->s.nsamples);
    CHECK_STREQ(v[2], want);
    CHECK_STREQ(v[0], "3");
    CHECK_STREQ(v[1], "5");
    CHECK_STREQ(v[3], "ip \"stats\" <&> 'x' \\ \x01\t\n\xc3\xa9 " R " end");
    CHECK_STREQ(v[4], f->s.bottleneck >= 0 ? S1 : "None");
    CHECK_STREQ(v[5], "False");
    CHECK_STREQ(v[6], "2000000000");
    uint64_t tsum = 0, dsum = 0; /* sums wrap like python's % 2**64 */
    for (size_t i = 0; i < f->s.nsamples; i++)
        tsum += f->samples[i].t_ns, dsum += f->samples[i].depth;
    snprintf(want, sizeof want, "%llu", (unsigned long long)tsum);
    CHECK_STREQ(v[7], want);
    snprintf(want, sizeof want, "%llu", (unsigned long long)dsum);
    CHECK_STREQ(v[8], want);
    CHECK_STREQ(v[9], "source");
    CHECK_STREQ(v[10], S1);
    CHECK_STREQ(v[11], S2); /* control characters round-trip */
    CHECK_STREQ(v[12], S3_DECODED);
    CHECK_STREQ(v[13], LONG_NAME);
    CHECK_STREQ(v[16], "block");
    CHECK_STREQ(v[22], "drop_newest");
    CHECK_STREQ(v[28], "drop_oldest");
    CHECK_STREQ(v[15], S1);
    CHECK_STREQ(v[26], S2);
    CHECK_STREQ(v[27], S3_DECODED);
    CHECK_STREQ(v[17], "5000");
    CHECK_STREQ(v[29], "18446744073709551615"); /* UINT64_MAX, exact */
    CHECK_STREQ(v[30], "18446744073709551614");
    CHECK_STREQ(v[19], "100");
    unlink(path);
}

RILL_TEST(stats_report, json_parses_and_round_trips) {
    fixture f;
    fixture_init(&f, 30);
    check_json(&f, "30.json");
    free(f.samples);
}

RILL_TEST(stats_report, json_zero_one_and_100k_samples_no_bottleneck) {
    static const size_t counts[] = {0, 1, 100000};
    if (need("python3"))
        return;
    for (int i = 0; i < 3; i++) {
        fixture f;
        char what[32];
        fixture_init(&f, counts[i]);
        f.s.bottleneck = i == 0 ? -1 : 1;
        snprintf(what, sizeof what, "%zu.json", counts[i]);
        check_json(&f, what);
        free(f.samples);
    }
}

RILL_TEST(stats_report, json_empty_pipeline) {
    rill_stats s;
    char path[512];
    const char *v[MAXF];
    memset(&s, 0, sizeof s);
    s.bottleneck = -1; /* no name, no stages, no queues: still valid */
    if (need("python3"))
        return;
    CHECK_OK(write_report(rill_stats_write_json, &s, "empty.json", path, sizeof path));
    CHECK_EQ(python_fields(json_check, path, v, MAXF), 10);
    CHECK_STREQ(v[9], ""); /* no verdict */
    CHECK_STREQ(v[3], "");
    CHECK_STREQ(v[4], "None");
    unlink(path);
}

/* ---- SVG ------------------------------------------------------------------------ */

/* Fields: title, visible texts joined by '|', polyline count, then per line:
 * point count, min y, max y, min x, max x. */
static const char svg_check[] =
    "import sys, xml.etree.ElementTree as ET\n"
    "ns = '{http://www.w3.org/2000/svg}'\n"
    "root = ET.parse(sys.argv[1]).getroot()\n"
    "assert root.tag == ns + 'svg' and root.get('version') == '1.1'\n"
    "texts = '|'.join(''.join(t.itertext()) for t in root.iter(ns + 'text'))\n"
    "lines = root.findall(ns + 'polyline')\n"
    "out = [root.find(ns + 'title').text, texts, len(lines)]\n"
    "for l in lines:\n"
    "    p = [tuple(map(float, xy.split(','))) for xy in l.get('points').split()]\n"
    "    out += [len(p), min(y for x, y in p), max(y for x, y in p),\n"
    "            min(x for x, y in p), max(x for x, y in p)]\n"
    "sys.stdout.buffer.write(b'\\0'.join(str(x).encode('utf-8') for x in out))\n";

typedef struct svg_info {
    char title[256], texts[4096];
    int lines, points[4];
    double miny[4], maxy[4], minx[4], maxx[4];
    long size;
} svg_info;

/* Write f's SVG, validate it with xmllint, and read it back with python. */
static int svg_of(const rill_stats *s, const char *what, svg_info *info) {
    char path[512];
    const char *v[MAXF];
    struct stat st;
    memset(info, 0, sizeof *info);
    if (write_report(rill_stats_write_svg, s, what, path, sizeof path) != 0)
        return -1;
    if (!shell_ok("xmllint --noout", path) || stat(path, &st) != 0)
        return -2;
    info->size = (long)st.st_size;
    int n = python_fields(svg_check, path, v, MAXF);
    unlink(path);
    if (n < 3)
        return -3;
    snprintf(info->title, sizeof info->title, "%s", v[0]);
    snprintf(info->texts, sizeof info->texts, "%s", v[1]);
    info->lines = atoi(v[2]);
    for (int k = 0; k < info->lines && k < 4 && 3 + 5 * k + 4 < n; k++) {
        info->points[k] = atoi(v[3 + 5 * k]);
        info->miny[k] = atof(v[4 + 5 * k]);
        info->maxy[k] = atof(v[5 + 5 * k]);
        info->minx[k] = atof(v[6 + 5 * k]);
        info->maxx[k] = atof(v[7 + 5 * k]);
    }
    return n == 3 + 5 * info->lines ? 0 : -4;
}

#define NEED_SVG_TOOLS()                                                       \
    do {                                                                       \
        if (need("python3") || need("xmllint"))                                \
            return;                                                            \
    } while (0)

RILL_TEST(stats_report, svg_valid_titled_one_line_per_queue_with_legend) {
    NEED_SVG_TOOLS();
    fixture f;
    svg_info a;
    fixture_init(&f, 30);
    int rc = svg_of(&f.s, "30.svg", &a);
    free(f.samples);
    CHECK_EQ(rc, 0);
    CHECK_STREQ(a.title, PIPE_XML ": queue fill over time");
    CHECK(strstr(a.texts, PIPE_XML ": queue fill over time|") != NULL); /* visible too */
    CHECK_EQ(a.lines, 3);
    CHECK(strstr(a.texts, "source -> " S1 " (capacity 1000, block; mean: 0% ready") != NULL);
    CHECK(strstr(a.texts, S1 " -> ctl" R R "\t" "\x7f" " (capacity 1000, drop_newest; mean:") != NULL);
    CHECK(strstr(a.texts, " -> " S3_DECODED " (capacity 1000, drop_oldest; mean:") != NULL);
    CHECK(strstr(a.texts, "bottleneck: " VERDICT "|") != NULL); /* the verdict, shown */
    CHECK(strstr(a.texts, "time (s)") != NULL);
    CHECK(strstr(a.texts, "queue fill (% of capacity)") != NULL);
    CHECK(strstr(a.texts, "|100|") != NULL);
    CHECK(strstr(a.texts, "no samples") == NULL);
    for (int k = 0; k < 3; k++)
        CHECK_EQ(a.points[k], 10);
    CHECK(a.maxy[1] == a.miny[1]); /* queue 1 sits at 50% throughout */
    CHECK(a.minx[0] < a.maxx[0]);
}

RILL_TEST(stats_report, svg_zero_and_one_sample) {
    NEED_SVG_TOOLS();
    fixture f;
    svg_info a;
    fixture_init(&f, 0);
    CHECK_EQ(svg_of(&f.s, "0.svg", &a), 0);
    free(f.samples);
    CHECK_EQ(a.lines, 0);
    CHECK(strstr(a.texts, "no samples") != NULL);
    CHECK(strstr(a.texts, "time (s)") != NULL);
    CHECK(strstr(a.texts, "source -> " S1) != NULL); /* the legend still names queues */

    fixture_init(&f, 1);
    f.s.nqueues = 1; /* one queue with one sample: a visible mark */
    int rc = svg_of(&f.s, "1.svg", &a);
    free(f.samples);
    CHECK_EQ(rc, 0);
    CHECK_EQ(a.lines, 1);
    CHECK(a.points[0] >= 2);
    CHECK(a.maxx[0] > a.minx[0]);

    rill_stats empty;
    memset(&empty, 0, sizeof empty);
    empty.bottleneck = -1;
    CHECK_EQ(svg_of(&empty, "empty.svg", &a), 0);
    CHECK_EQ(a.lines, 0);
    CHECK(strstr(a.texts, "no queues") != NULL);
}

/* 100,000 samples: the file stays small, every line has a bounded number of
 * points, and a one-sample spike to full capacity still reaches 100%. */
RILL_TEST(stats_report, svg_100k_samples_bounded_and_peaks_kept) {
    NEED_SVG_TOOLS();
    fixture f;
    svg_info big, ref;
    /* The y of 0% and 100%, from a plot of two samples at 0 and full. */
    fixture_init(&f, 2);
    f.s.nqueues = 1;
    f.samples[0].depth = 0;
    f.samples[1].queue = 0;
    f.samples[1].depth = 1000;
    int rc = svg_of(&f.s, "ref.svg", &ref);
    free(f.samples);
    CHECK_EQ(rc, 0);
    CHECK_EQ(ref.lines, 1);
    CHECK(ref.miny[0] < ref.maxy[0]);

    fixture_init(&f, 100000);
    f.samples[77778].depth = 1000; /* queue 0 (77778 % 3 == 0): one spike */
    rc = svg_of(&f.s, "100k.svg", &big);
    free(f.samples);
    CHECK_EQ(rc, 0);
    CHECK_EQ(big.lines, 3);
    CHECK(big.size < 200 * 1024);
    for (int k = 0; k < 3; k++) {
        CHECK(big.points[k] >= 100);
        CHECK(big.points[k] <= 2000);
    }
    CHECK(big.miny[0] == ref.miny[0]);                  /* the spike */
    CHECK(big.maxy[0] < ref.maxy[0]); /* the deepest per column: never down to 0 */
    double half = (ref.miny[0] + ref.maxy[0]) / 2;
    CHECK(big.miny[1] > half - 0.11 && big.maxy[1] < half + 0.11); /* flat at 50% */
    CHECK(big.miny[2] < half); /* a sawtooth to full, never below 0% */
    CHECK(big.maxy[2] <= ref.maxy[0]);
}

/* ---- the table -------------------------------------------------------------------- */

static unsigned display_width(const char *s, size_t n) {
    unsigned w = 0;
    for (size_t i = 0; i < n; i++)
        w += ((unsigned char)s[i] & 0xc0) != 0x80;
    return w;
}

/* Every line of the block starting at the line after `heading` up to the
 * next line that does not start with two spaces has the same width. */
static int block_aligned(const char *text, const char *heading, int *rows) {
    const char *p = strstr(text, heading);
    unsigned width = 0;
    *rows = 0;
    if (!p || !(p = strchr(p, '\n')))
        return 0;
    for (p++; strncmp(p, "  ", 2) == 0; (*rows)++) {
        const char *e = strchr(p, '\n');
        if (!e)
            return 0;
        unsigned w = display_width(p, (size_t)(e - p));
        if (*rows && w != width)
            return 0;
        width = w;
        p = e + 1;
    }
    return 1;
}

RILL_TEST(stats_report, table_aligned_with_names_units_and_bottleneck) {
    fixture f;
    char path[512];
    size_t len;
    int rows;
    fixture_init(&f, 30);
    f.stages[4].threaded = false; /* inline: busy not measured */
    int rc = write_report(rill_stats_print, &f.s, "table.txt", path, sizeof path);
    free(f.samples);
    CHECK_OK(rc);
    char *t = slurp(path, &len);
    unlink(path);
    CHECK(t != NULL);
    CHECK(strlen(t) == len); /* no NUL byte, and sanitized (below) */
    for (size_t i = 0; i < len; i++)
        CHECK(t[i] == '\n' || (unsigned char)t[i] >= 0x20);
    static const char title[] = "pipeline ip \"stats\" <&> 'x' \\ ???\xc3\xa9 ? end: "
                                "2.000 s elapsed\n";
    CHECK(strncmp(t, title, strlen(title)) == 0);
    CHECK(strstr(t, "bottleneck: " VERDICT "\n") != NULL);
    CHECK(block_aligned(t, "queues (counts in items):", &rows));
    CHECK_EQ(rows, 4);
    CHECK(block_aligned(t, "stages:", &rows));
    CHECK_EQ(rows, 6);
    CHECK(strstr(t, "prod wait ms") && strstr(t, "cons wait ms") && strstr(t, "mean fill %"));
    CHECK(strstr(t, "busy ms") && strstr(t, "busy %"));
    CHECK(strstr(t, "source -> " S1) != NULL);
    CHECK(strstr(t, S1 " -> ctl????") != NULL);
    CHECK(strstr(t, "ctl???? -> bad?" "?(?????z??") != NULL);
    CHECK(strstr(t, "a-stage-name-much-longer-than...") != NULL); /* cut at 32 */
    CHECK(strstr(t, "drop_newest") && strstr(t, "drop_oldest"));
    CHECK(strstr(t, "18446744073709551615") != NULL);
    CHECK(strstr(t, "  95.0  ") != NULL);  /* mean fill of the first queue */
    CHECK(strstr(t, "   12.3  ") != NULL); /* producer wait, ms */
    free(t);
}

RILL_TEST(stats_report, table_without_bottleneck_or_samples) {
    fixture f;
    char path[512];
    size_t len;
    fixture_init(&f, 0);
    f.s.bottleneck = -1;
    f.s.verdict[0] = 0; /* hand-built: none */
    f.stages[4].measured = false; /* its thread's time unknown: "-" */
    for (int k = 0; k < 3; k++)
        memset(f.queues[k].bands, 0, sizeof f.queues[k].bands);
    int rc = write_report(rill_stats_print, &f.s, "table0.txt", path, sizeof path);
    free(f.samples);
    CHECK_OK(rc);
    char *t = slurp(path, &len);
    unlink(path);
    CHECK(t != NULL);
    CHECK(strstr(t, "bottleneck: none") != NULL);
    CHECK(strstr(t, "depth samples: none") != NULL);
    CHECK(strstr(t, "  -\n") != NULL); /* no mean fill without samples */
    free(t);
}

/* ---- errors ---------------------------------------------------------------------- */

RILL_TEST(stats_report, write_errors_are_returned) {
    fixture f;
    fixture_init(&f, 1000);
    int (*const fn[3])(const rill_stats *, FILE *) = {rill_stats_print, rill_stats_write_json,
                                                       rill_stats_write_svg};
    for (int i = 0; i < 3; i++) {
        FILE *full = fopen("/dev/full", "w");
        CHECK(full != NULL);
        int rc = fn[i](&f.s, full);
        fclose(full);
        CHECK_EQ(rc, -ENOSPC);
        CHECK_EQ(fn[i](NULL, stderr), RILL_EINVAL);
        CHECK_EQ(fn[i](&f.s, NULL), RILL_EINVAL);
    }
    free(f.samples);
}
