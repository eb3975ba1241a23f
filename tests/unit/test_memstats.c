/* Unit tests: the parsers behind META `memory` (util/memstats.c) on canned
 * text: _PyObject_DebugMallocStats as 3.8 and 3.13 print it, and smaps. */
#include <criterion/criterion.h>
#include <string.h>
#include "util/alloc.h"
#include "util/memstats.h"
#include "heapsnap/errors.h"

/* CPython 3.8 (256 KiB arenas, no arena map), size-class rows shortened. */
static const char stats38[] =
	"Small block threshold = 512, in 32 size classes.\n"
	"\n"
	"class   size   num pools   blocks in use  avail blocks\n"
	"-----   ----   ---------   -------------  ------------\n"
	"    0     16           1             151           102\n"
	"    1     32           8            1003            17\n"
	"\n"
	"# arenas allocated total           =                   20\n"
	"# arenas reclaimed                 =                   14\n"
	"# arenas highwater mark            =                    6\n"
	"# arenas allocated current         =                    6\n"
	"6 arenas * 262144 bytes/arena      =            1,572,864\n"
	"\n"
	"# bytes in allocated blocks        =            1,307,472\n"
	"# bytes in available blocks        =               64,688\n"
	"41 unused pools * 4096 bytes       =              167,936\n"
	"# bytes lost to pool headers       =               16,464\n"
	"# bytes lost to quantization       =               16,304\n"
	"# bytes lost to arena alignment    =                    0\n"
	"Total                              =            1,572,864\n"
	"\n"
	"       3 free PyCFunctionObjects * 56 bytes each =                  168\n";

/* CPython 3.13: 1 MiB arenas, and a second "Total" block (the arena map)
 * whose figures must not be taken for the arenas'. */
static const char stats313[] =
	"Small block threshold = 512, in 32 size classes.\n"
	"# arenas allocated total           =                    2\n"
	"# arenas reclaimed                 =                    0\n"
	"# arenas highwater mark            =                    2\n"
	"# arenas allocated current         =                    2\n"
	"2 arenas * 1048576 bytes/arena     =            2,097,152\n"
	"\n"
	"# bytes in allocated blocks        =            1,369,904\n"
	"# bytes in available blocks        =              288,864\n"
	"24 unused pools * 16384 bytes      =              393,216\n"
	"# bytes lost to pool headers       =                4,896\n"
	"# bytes lost to quantization       =                7,504\n"
	"# bytes lost to arena alignment    =               32,768\n"
	"Total                              =            2,097,152\n"
	"arena map counts\n"
	"# arena map mid nodes              =                    1\n"
	"# arena map bot nodes              =                    1\n"
	"# bytes lost to arena map root     =              262,144\n"
	"# bytes lost to arena map mid      =              262,144\n"
	"# bytes lost to arena map bot      =              131,072\n"
	"Total                              =              655,360\n";

Test(memstats_pymalloc, parses_38_totals)
{
	hs_pymalloc_stats st;
	cr_assert_eq(hs_memstats_pymalloc_parse(&st, stats38), 0);
	cr_assert_eq(st.arenas, 6);
	cr_assert_eq(st.arena_bytes, 1572864);
	cr_assert_eq(st.allocated_bytes, 1307472);
	cr_assert_eq(st.available_bytes, 64688);
	cr_assert_eq(st.free_pool_bytes, 167936);
	cr_assert_eq(st.pool_overhead_bytes, 16464 + 16304);
	/* pymalloc's own identity holds */
	cr_assert_eq(st.allocated_bytes + st.available_bytes + st.free_pool_bytes +
	             st.pool_overhead_bytes, st.arena_bytes);
}

Test(memstats_pymalloc, ignores_the_arena_map_block_of_313)
{
	hs_pymalloc_stats st;
	cr_assert_eq(hs_memstats_pymalloc_parse(&st, stats313), 0);
	cr_assert_eq(st.arenas, 2);
	cr_assert_eq(st.arena_bytes, 2097152);
	cr_assert_eq(st.allocated_bytes, 1369904);
	cr_assert_eq(st.available_bytes, 288864);
	cr_assert_eq(st.free_pool_bytes, 393216);
	cr_assert_eq(st.pool_overhead_bytes, 4896 + 7504 + 32768);
	cr_assert_eq(st.allocated_bytes + st.available_bytes + st.free_pool_bytes +
	             st.pool_overhead_bytes, st.arena_bytes);
}

Test(memstats_pymalloc, rejects_text_without_arena_figures)
{
	hs_pymalloc_stats st;
	cr_assert_eq(hs_memstats_pymalloc_parse(&st, ""), -1);
	cr_assert_eq(st.arena_bytes, -1);
	cr_assert_eq(hs_memstats_pymalloc_parse(&st, "# arenas allocated current = x\nTotal = 5\n"), -1);
	cr_assert_eq(st.arenas, -1);
	/* figures after the first Total are not the arenas' */
	cr_assert_eq(hs_memstats_pymalloc_parse(&st, "Total = 1\n2 arenas * 1 bytes/arena = 2\n"
	                                              "# bytes in allocated blocks = 1\n"), -1);
	cr_assert_eq(st.arena_bytes, -1);
}

static void feed_all(hs_smaps *m, const char *text)
{
	char line[512];
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
		cr_assert_lt(n, sizeof(line));
		memcpy(line, p, n);
		line[n] = '\0';
		cr_assert_eq(hs_smaps_feed(m, line), 0);
		p += n;
	}
	hs_smaps_finish(m);
}

#define FIELDS(rss) \
	"Size:                  4 kB\n" \
	"Rss:                " rss " kB\n" \
	"Pss:                   4 kB\n" \
	"Anonymous:             0 kB\n" \
	"VmFlags: rd mr mw me sd\n"

static const char smaps_text[] =
	"55d0a0000000-55d0a0001000 r--p 00000000 08:01 1234       /usr/bin/python3.11\n" FIELDS("4")
	"55d0a0001000-55d0a0300000 r-xp 00001000 08:01 1234       /usr/bin/python3.11\n" FIELDS("2000")
	"55d0a1000000-55d0a1400000 rw-p 00000000 00:00 0          [heap]\n" FIELDS("3000")
	"7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n" FIELDS("100")
	"7f0000021000-7f0004000000 ---p 00000000 00:00 0 \n" FIELDS("0")
	/* a malloc heap right above the previous heap's PROT_NONE tail: 64 MiB aligned, no stack */
	"7f0004000000-7f0004021000 rw-p 00000000 00:00 0 \n" FIELDS("50")
	/* thread stack: a one-page guard, then the stack */
	"7f1000000000-7f1000001000 ---p 00000000 00:00 0 \n" FIELDS("0")
	"7f1000001000-7f1000801000 rw-p 00000000 00:00 0 \n" FIELDS("16")
	/* a second thread stack */
	"7f1000801000-7f1000802000 ---p 00000000 00:00 0 \n" FIELDS("0")
	"7f1000802000-7f1001002000 rw-p 00000000 00:00 0 \n" FIELDS("8")
	/* a PROT_NONE library gap is no guard: the anonymous rw after it is no stack */
	"7f2000000000-7f2000001000 ---p 00001000 08:01 99         /usr/lib/libz.so.1\n" FIELDS("0")
	"7f2000001000-7f2000101000 rw-p 00000000 00:00 0 \n" FIELDS("64")
	"7f2000200000-7f2000300000 r-xp 00000000 08:01 99         /usr/lib/libz.so.1\n" FIELDS("40")
	"7f2000300000-7f2000301000 rw-s 00000000 00:01 7          /memfd:shm (deleted)\n" FIELDS("4")
	"7f2000400000-7f2000401000 rw-p 00000000 00:00 0          [anon:arena]\n" FIELDS("4")
	"7f2000500000-7f2000501000 r--p 00000000 08:01 55         /data/with space.bin\n" FIELDS("4")
	"7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0          [stack]\n" FIELDS("132")
	"7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0          [vdso]\n" FIELDS("8");

Test(memstats_smaps, sums_rss_by_kind)
{
	hs_smaps m;
	hs_smaps_init(&m);
	feed_all(&m, smaps_text);
	cr_assert_eq(m.mappings, 18);
	cr_assert_eq(m.kind_rss[HS_MAP_FILE], (4 + 2000 + 0 + 40 + 4) * 1024ull);
	cr_assert_eq(m.kind_rss[HS_MAP_HEAP], 3000 * 1024ull);
	cr_assert_eq(m.kind_rss[HS_MAP_STACK], 132 * 1024ull);
	cr_assert_eq(m.kind_rss[HS_MAP_THREAD_STACK], (16 + 8) * 1024ull);
	cr_assert_eq(m.thread_stacks, 2);
	cr_assert_eq(m.kind_rss[HS_MAP_ANON], (100 + 50 + 64 + 4 + 4) * 1024ull);
	cr_assert_eq(m.kind_rss[HS_MAP_SPECIAL], 8 * 1024ull);
	uint64_t sum = 0;
	for (int k = 0; k < HS_MAP_KINDS; k++)
		sum += m.kind_rss[k];
	cr_assert_eq(sum, m.rss);
	hs_smaps_release(&m);
}

Test(memstats_smaps, lists_files_biggest_first)
{
	hs_smaps m;
	hs_smaps_init(&m);
	feed_all(&m, smaps_text);
	cr_assert_eq(m.file_count, 3);
	cr_assert_str_eq(m.files[0].path, "/usr/bin/python3.11");
	cr_assert_eq(m.files[0].rss, 2004 * 1024ull);
	cr_assert_str_eq(m.files[1].path, "/usr/lib/libz.so.1");
	cr_assert_eq(m.files[1].rss, 40 * 1024ull);
	cr_assert_str_eq(m.files[2].path, "/data/with space.bin");
	hs_smaps_release(&m);
}

Test(memstats_smaps, ignores_junk_and_fields_before_a_mapping)
{
	hs_smaps m;
	hs_smaps_init(&m);
	cr_assert_eq(hs_smaps_feed(&m, "Rss: 100 kB\n"), 0);
	cr_assert_eq(hs_smaps_feed(&m, "zz-yy rw-p 0 0 0\n"), 0);
	cr_assert_eq(hs_smaps_feed(&m, "\n"), 0);
	cr_assert_eq(m.rss, 0);
	cr_assert_eq(m.mappings, 0);
	/* one Rss per mapping: a second one is not added */
	cr_assert_eq(hs_smaps_feed(&m, "1000-2000 rw-p 00000000 00:00 0 \n"), 0);
	cr_assert_eq(hs_smaps_feed(&m, "Rss: 4 kB\n"), 0);
	cr_assert_eq(hs_smaps_feed(&m, "Rss: 4 kB\n"), 0);
	cr_assert_eq(m.rss, 4096);
	hs_smaps_release(&m);
}

Test(memstats_smaps, survives_out_of_memory)
{
	hs_smaps m;
	hs_smaps_init(&m);
	hs_alloc_fail_after(1); /* the next allocation fails */
	int rc = hs_smaps_feed(&m, "1000-2000 r--p 00000000 08:01 1 /lib/a.so\n");
	hs_smaps_feed(&m, "Rss: 4 kB\n");
	hs_alloc_fail_after(0);
	cr_assert_eq(rc, HS_ENOMEM);
	cr_assert_eq(m.kind_rss[HS_MAP_FILE], 4096);
	cr_assert_eq(m.file_count, 0);
	hs_smaps_release(&m);
}

Test(memstats_smaps, sums_copied_on_write_pages_of_file_mappings)
{
	hs_smaps m;
	hs_smaps_init(&m);
	feed_all(&m, "1000-3000 rw-p 00001000 08:01 7 /usr/lib/libfoo.so\n"
	             "Rss:                   8 kB\n"
	             "Anonymous:             4 kB\n"
	             "Anonymous:             4 kB\n"
	             "4000-5000 rw-p 00000000 00:00 0 \n"
	             "Rss:                   4 kB\n"
	             "Anonymous:             4 kB\n");
	cr_assert_eq(m.file_anon, 4096); /* anonymous mappings and repeats not counted */
	cr_assert_eq(m.kind_rss[HS_MAP_FILE], 8192);
	cr_assert_eq(m.kind_rss[HS_MAP_ANON], 4096);
	hs_smaps_release(&m);
}
