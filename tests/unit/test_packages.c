/*
 * Unit tests: per-package retained sizes (include/heapsnap/packages.h,
 * src/analysis/packages.c) on built graphs, and mapped files attributed to
 * packages by path.
 */
#include <criterion/criterion.h>
#include <string.h>
#include "heapsnap/format.h"
#include "heapsnap/snapshot.h"
#include "heapsnap/packages.h"
#include "util/alloc.h"
#include "testutil.h"
#include "testgraph.h"

static const hs_package *row(const hs_packages *p, const char *name)
{
	for (size_t i = 0; i < p->count; i++)
		if (!strcmp(p->packages[i].name, name))
			return &p->packages[i];
	cr_assert_fail("no package %s", name);
	return NULL;
}

static uint32_t module(tgraph *g, const char *name, uint32_t *dict)
{
	uint32_t m = tg_node(g, "module", 72);
	*dict = tg_node(g, "dict", 1000);
	tg_name(g, m, *dict, "__dict__");
	tg_root(g, HS_ROOT_MODULE, m, name, NULL);
	return m;
}

/*
 * pkga (modules pkga and pkga.sub) and pkgb:
 *   S (100) is shared by pkga's two modules: pkga's
 *   U (200) only in pkga.sub, F (a function, 136) in pkga whose
 *   __globals__ is pkga's namespace: pkga's
 *   T (300) is shared by pkga and pkgb: nobody's
 *   pkgb imports pkga (a reference to the module): that changes nothing
 * Each dict key is its own str (50).
 */
Test(packages, modules_retain_as_one_set)
{
	tgraph g = { 0 };
	uint32_t ad0, ad1, bd0;
	uint32_t a0 = module(&g, "pkga", &ad0);
	uint32_t a1 = module(&g, "pkga.sub", &ad1);
	uint32_t b0 = module(&g, "pkgb", &bd0);
	(void)b0;
	uint32_t S = tg_node(&g, "app.Shared", 100), U = tg_node(&g, "app.Own", 200);
	uint32_t T = tg_node(&g, "app.Both", 300), F = tg_node(&g, "function", 136);
	tg_key(&g, ad0, tg_str(&g, "sub"), a1);
	tg_key(&g, ad0, tg_str(&g, "S"), S);
	tg_key(&g, ad0, tg_str(&g, "T"), T);
	tg_key(&g, ad0, tg_str(&g, "F"), F);
	tg_name(&g, F, ad0, "__globals__");
	tg_key(&g, ad1, tg_str(&g, "S"), S);
	tg_key(&g, ad1, tg_str(&g, "U"), U);
	tg_key(&g, bd0, tg_str(&g, "T"), T);
	tg_key(&g, bd0, tg_str(&g, "pkga"), a0);
	hs_snapshot *s = tg_open(&g);
	hs_packages *p;
	cr_assert_eq(hs_packages_compute(&p, s), 0, "%s", hs_error_last());
	cr_assert_eq(p->count, 2);
	cr_assert_eq(p->mappings_known, 0);
	const hs_package *a = row(p, "pkga"), *b = row(p, "pkgb");
	cr_assert_eq(a->modules, 2);
	cr_assert_eq(a->retained, 72 + 1000 + 72 + 1000 + 100 + 200 + 136 + 6 * 50, "pkga %lu",
	             (unsigned long)a->retained);
	cr_assert_eq(a->count, 13);
	cr_assert_eq(b->modules, 1);
	cr_assert_eq(b->retained, 72 + 1000 + 2 * 50, "pkgb %lu", (unsigned long)b->retained);
	cr_assert_eq(b->count, 4);
	cr_assert_eq(a->mapped, HS_PACKAGE_MAPPED_UNKNOWN);
	cr_assert_eq(p->retained, a->retained + b->retained);
	/* every reachable object: both packages and T */
	cr_assert_eq(p->reachable_bytes, p->retained + 300);
	cr_assert_eq(&p->packages[0], a, "largest first");
	hs_packages_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

/* An object a root outside the packages also holds (a thread's local) is
 * not retained by the package; a module held from C still is. */
Test(packages, other_roots_share)
{
	tgraph g = { 0 };
	uint32_t ad;
	uint32_t m = module(&g, "solo", &ad);
	uint32_t X = tg_node(&g, "app.X", 400), Y = tg_node(&g, "app.Y", 500);
	tg_key(&g, ad, tg_str(&g, "X"), X);
	tg_key(&g, ad, tg_str(&g, "Y"), Y);
	tg_root(&g, HS_ROOT_LOCAL, Y, "MainThread", "y");
	g.extra[m] = 1; /* held from C: a reference the graph does not show */
	g.extra[ad] = 1;
	hs_snapshot *s = tg_open(&g);
	hs_packages *p;
	cr_assert_eq(hs_packages_compute(&p, s), 0, "%s", hs_error_last());
	cr_assert_eq(p->count, 1);
	cr_assert_eq(p->packages[0].retained, 72 + 1000 + 400 + 2 * 50, "%lu",
	             (unsigned long)p->packages[0].retained);
	hs_packages_free(p);
	hs_snapshot_free(s);
	tg_free(&g);
}

Test(packages, files_belong_to_packages_by_path)
{
	char b[64];
	cr_assert_eq(hs_package_of_path(b, sizeof(b),
	             "/v/lib/python3.11/site-packages/numpy/core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so"), 1);
	cr_assert_str_eq(b, "numpy");
	cr_assert_eq(hs_package_of_path(b, sizeof(b),
	             "/v/lib/python3.11/site-packages/numpy.libs/libopenblas64_p-r0-0cf96a72.3.23.dev.so"), 1);
	cr_assert_str_eq(b, "numpy");
	cr_assert_eq(hs_package_of_path(b, sizeof(b),
	             "/usr/lib/python3/dist-packages/_cffi_backend.cpython-311-x86_64-linux-gnu.so"), 1);
	cr_assert_str_eq(b, "_cffi_backend");
	cr_assert_eq(hs_package_of_path(b, sizeof(b),
	             "/root/.pyenv/versions/3.13.0/lib/python3.13/lib-dynload/_decimal.cpython-313-x86_64-linux-gnu.so"), 1);
	cr_assert_str_eq(b, "_decimal");
	cr_assert_eq(hs_package_of_path(b, sizeof(b),
	             "/v/lib/python3.11/site-packages/greenlet/_greenlet.cpython-311-x86_64-linux-gnu.so"), 1);
	cr_assert_str_eq(b, "greenlet");
	/* not a package's */
	cr_assert_eq(hs_package_of_path(b, sizeof(b), "/usr/lib/x86_64-linux-gnu/libc.so.6"), 0);
	cr_assert_str_eq(b, "");
	cr_assert_eq(hs_package_of_path(b, sizeof(b), "/usr/lib/libpython3.11.so.1.0"), 0);
	cr_assert_eq(hs_package_of_path(b, sizeof(b),
	             "/v/lib/python3.11/site-packages/numpy-2.0.dist-info/RECORD"), 0);
	cr_assert_eq(hs_package_of_path(b, sizeof(b), "/v/site-packages/README.txt"), 0);
	/* too long for the buffer: refused, never cut */
	cr_assert_eq(hs_package_of_path(b, 4, "/v/site-packages/numpy/x.so"), 0);
}
