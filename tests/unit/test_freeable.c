/*
 * Unit tests: freeable sizes, what dropping objects frees with weakref
 * callbacks run (include/heapsnap/retention.h, src/analysis/freeable.c).
 * Every expected figure is the sum of the sizes written by hand below.
 */
#include <criterion/criterion.h>
#include <string.h>
#include "heapsnap/format.h"
#include "heapsnap/snapshot.h"
#include "heapsnap/retention.h"
#include "util/alloc.h"
#include "testutil.h"
#include "testgraph.h"

static const char *const keys[] = { "k0", "k1", "k2", "k3", "k4", "k5" };

typedef struct ctx {
	hs_snapshot *s;
	hs_dominators *d;
	hs_freeable *f;
} ctx;

static ctx open_ctx(tgraph *g)
{
	ctx c;
	c.s = tg_open(g);
	cr_assert_eq(hs_dominators_compute(&c.d, c.s, NULL), 0, "%s", hs_error_last());
	cr_assert_eq(hs_freeable_new(&c.f, c.s, c.d), 0, "%s", hs_error_last());
	return c;
}

static void close_ctx(ctx *c)
{
	hs_freeable_free(c->f);
	hs_dominators_free(c->d);
	hs_snapshot_free(c->s);
}

static hs_freeable_result of(ctx *c, const uint32_t *nodes, size_t n)
{
	hs_freeable_result r;
	cr_assert_eq(hs_freeable_compute(&r, c->f, nodes, n), 0, "%s", hs_error_last());
	cr_assert_geq(r.freeable, r.retained);
	return r;
}

/*
 * The identity map (SQLAlchemy's shape): module app -> __dict__:
 *   ['items'] list (1000) -> row i (100) -> ['_sa_instance_state'] state i
 *   ['map']   dict (500)  -> key i (str 50) : state i (60)
 *   ['cleanup'] function (136)
 * state i -> __dict__ (200) -> ['obj'] weakref (80) ~weak~> row i,
 *                              ['key'] key i
 * weakref --__callback__--> method (64) -> [function, state i]
 * When the rows die each callback removes its state from the map: per row
 * 64 (method) + 60 (state) + 200 (its dict) + 80 (weakref) + 50 (key);
 * with the last state go the attribute names 'obj' and 'key' (2 x 50),
 * which only the states' dicts hold.
 */
#define PER_ROW_EXTRA (64 + 60 + 200 + 80 + 50)

typedef struct idmap {
	uint32_t moddict, list, map, rows[6], states[6];
} idmap;

static idmap build_idmap(tgraph *g, uint32_t n)
{
	idmap x;
	uint32_t mod = tg_node(g, "module", 72);
	x.moddict = tg_node(g, "dict", 1000);
	tg_name(g, mod, x.moddict, "__dict__");
	x.list = tg_node(g, "list", 1000);
	x.map = tg_node(g, "dict", 500);
	uint32_t fn = tg_node(g, "function", 136);
	tg_key(g, x.moddict, tg_str(g, "items"), x.list);
	tg_key(g, x.moddict, tg_str(g, "map"), x.map);
	tg_key(g, x.moddict, tg_str(g, "cleanup"), fn);
	uint32_t a_state = tg_str(g, "_sa_instance_state"), a_obj = tg_str(g, "obj"),
	         a_key = tg_str(g, "key");
	for (uint32_t i = 0; i < n; i++) {
		uint32_t row = tg_node(g, "app.Row", 100);
		uint32_t st = tg_node(g, "sqlalchemy.orm.state.InstanceState", 60);
		uint32_t sd = tg_node(g, "dict", 200);
		uint32_t wr = tg_node(g, "weakref.ReferenceType", 80);
		uint32_t m = tg_node(g, "method", 64);
		uint32_t key = tg_str(g, keys[i]);
		tg_index(g, x.list, row, i);
		tg_key(g, x.map, key, st);
		tg_edge_full(g, row, st, HS_EDGE_STRONG, HS_LABEL_ATTR, a_state, NULL);
		tg_name(g, st, sd, "__dict__");
		tg_key(g, sd, a_obj, wr);
		tg_key(g, sd, a_key, key);
		tg_weak(g, wr, row);
		tg_name(g, wr, m, "__callback__");
		tg_edge(g, m, fn);   /* __func__ first, as method_traverse visits */
		tg_edge(g, m, st);   /* then __self__ */
		x.rows[i] = row;
		x.states[i] = st;
	}
	tg_root(g, HS_ROOT_MODULE, mod, "app", NULL);
	return x;
}

Test(freeable, identity_map_frees_states_with_rows)
{
	tgraph g = { 0 };
	idmap x = build_idmap(&g, 3);
	ctx c = open_ctx(&g);
	cr_assert_eq(hs_freeable_callbacks(c.f), 3);
	hs_freeable_result r = of(&c, &x.list, 1);
	cr_assert_eq(r.retained, 1000 + 3 * 100);
	cr_assert_eq(r.freeable, 1000 + 3 * 100 + 3 * PER_ROW_EXTRA + 100, "freeable %lu",
	             (unsigned long)r.freeable);
	cr_assert_eq(r.callbacks, 3);
	cr_assert_eq(r.entries, 3);
	/* the rows as a set (what --by type computes for app.Row) */
	r = of(&c, x.rows, 3);
	cr_assert_eq(r.retained, 3 * 100);
	cr_assert_eq(r.freeable, 3 * 100 + 3 * PER_ROW_EXTRA + 100);
	/* one row */
	r = of(&c, &x.rows[1], 1);
	cr_assert_eq(r.retained, 100);
	cr_assert_eq(r.freeable, 100 + PER_ROW_EXTRA);
	/* the map itself: states are dominated by it, no callback concerned */
	r = of(&c, &x.map, 1);
	cr_assert_eq(r.freeable, r.retained);
	cr_assert_eq(r.rounds, 0);
	close_ctx(&c);
	tg_free(&g);
}

Test(freeable, owner_held_elsewhere_is_not_freed)
{
	tgraph g = { 0 };
	idmap x = build_idmap(&g, 3);
	/* state 0 is also a module global: the callback removes it from the
	 * map, but it stays alive, and so do its dict, weakref and key */
	tg_key(&g, x.moddict, tg_str(&g, "keep"), x.states[0]);
	ctx c = open_ctx(&g);
	hs_freeable_result r = of(&c, &x.list, 1);
	cr_assert_eq(r.retained, 1000 + 3 * 100);
	/* row 0's callback still runs and its method goes (64) */
	cr_assert_eq(r.freeable, 1000 + 3 * 100 + 2 * PER_ROW_EXTRA + 64, "freeable %lu",
	             (unsigned long)r.freeable);
	cr_assert_eq(r.entries, 2);
	close_ctx(&c);
	tg_free(&g);
}

/*
 * WeakValueDictionary: module -> __dict__ ['cache'] WeakValueDictionary (56)
 * -> __dict__ (300) -> ['data'] dict (400) -> key i : KeyedRef i (80)
 * KeyedRef i ~weak~> value i; .key -> key i; __callback__ -> remove (a
 * function held by the WeakValueDictionary's dict too, whose defaults
 * hold a weakref to the dictionary: no owner holds the KeyedRef). Values
 * are held by list ['values'] (200). Dropping the list frees each
 * KeyedRef (80) and its key (50).
 */
Test(freeable, weak_value_dictionary_entries_die_with_values)
{
	tgraph g = { 0 };
	uint32_t mod = tg_node(&g, "module", 72), md = tg_node(&g, "dict", 1000);
	tg_name(&g, mod, md, "__dict__");
	uint32_t wvd = tg_node(&g, "weakref.WeakValueDictionary", 56);
	uint32_t wd = tg_node(&g, "dict", 300), data = tg_node(&g, "dict", 400);
	uint32_t rm = tg_node(&g, "function", 136), defs = tg_node(&g, "tuple", 56);
	uint32_t selfref = tg_node(&g, "weakref.ReferenceType", 80);
	uint32_t vals = tg_node(&g, "list", 200);
	tg_key(&g, md, tg_str(&g, "cache"), wvd);
	tg_key(&g, md, tg_str(&g, "values"), vals);
	tg_name(&g, wvd, wd, "__dict__");
	tg_key(&g, wd, tg_str(&g, "data"), data);
	tg_key(&g, wd, tg_str(&g, "_remove"), rm);
	tg_name(&g, rm, defs, "__defaults__");
	tg_index(&g, defs, selfref, 0);
	tg_weak(&g, selfref, wvd);
	uint32_t key_attr = tg_str(&g, "key");
	for (uint32_t i = 0; i < 4; i++) {
		uint32_t v = tg_node(&g, "app.Big", 1000);
		uint32_t k = tg_str(&g, keys[i]);
		uint32_t kr = tg_node(&g, "weakref.KeyedRef", 80);
		tg_index(&g, vals, v, i);
		tg_key(&g, data, k, kr);
		tg_weak(&g, kr, v);
		tg_name(&g, kr, rm, "__callback__");
		tg_edge_full(&g, kr, k, HS_EDGE_STRONG, HS_LABEL_ATTR, key_attr, NULL);
	}
	tg_root(&g, HS_ROOT_MODULE, mod, "app", NULL);
	ctx c = open_ctx(&g);
	hs_freeable_result r = of(&c, &vals, 1);
	cr_assert_eq(r.retained, 200 + 4 * 1000);
	cr_assert_eq(r.freeable, 200 + 4 * 1000 + 4 * (80 + 50), "freeable %lu",
	             (unsigned long)r.freeable);
	cr_assert_eq(r.callbacks, 4);
	cr_assert_eq(r.entries, 4);
	close_ctx(&c);
	tg_free(&g);
}

/*
 * weakref.finalize(obj, func, args): the finalize object (48) keys its
 * info (56) in the class registry (a dict held by the module); info holds
 * the weakref (80) whose callback is the finalize object, func (a lambda,
 * 136) and args (64). When obj (100) dies, the registry entry goes.
 */
Test(freeable, finalize_registry_entry_goes_with_its_object)
{
	tgraph g = { 0 };
	uint32_t mod = tg_node(&g, "module", 72), md = tg_node(&g, "dict", 1000);
	tg_name(&g, mod, md, "__dict__");
	uint32_t obj = tg_node(&g, "app.Resource", 100);
	uint32_t reg = tg_node(&g, "dict", 600);
	uint32_t fz = tg_node(&g, "weakref.finalize", 48), info = tg_node(&g, "weakref._Info", 56);
	uint32_t wr = tg_node(&g, "weakref.ReferenceType", 80);
	uint32_t fn = tg_node(&g, "function", 136), args = tg_node(&g, "tuple", 64);
	tg_key(&g, md, tg_str(&g, "res"), obj);
	tg_key(&g, md, tg_str(&g, "_registry"), reg);
	tg_key(&g, reg, fz, info);
	tg_edge_full(&g, info, wr, HS_EDGE_STRONG, HS_LABEL_ATTR, tg_str(&g, "weakref"), NULL);
	tg_edge_full(&g, info, fn, HS_EDGE_STRONG, HS_LABEL_ATTR, tg_str(&g, "func"), NULL);
	tg_edge_full(&g, info, args, HS_EDGE_STRONG, HS_LABEL_ATTR, tg_str(&g, "args"), NULL);
	tg_weak(&g, wr, obj);
	tg_name(&g, wr, fz, "__callback__");
	tg_root(&g, HS_ROOT_MODULE, mod, "app", NULL);
	ctx c = open_ctx(&g);
	hs_freeable_result r = of(&c, &obj, 1);
	cr_assert_eq(r.retained, 100);
	cr_assert_eq(r.freeable, 100 + 48 + 56 + 80 + 136 + 64, "freeable %lu",
	             (unsigned long)r.freeable);
	cr_assert_eq(r.entries, 1);
	close_ctx(&c);
	tg_free(&g);
}

/* A weakref without a callback releases nothing: a plain weak cache held
 * in a dict keeps its (dead) weakrefs. */
Test(freeable, weakref_without_callback_releases_nothing)
{
	tgraph g = { 0 };
	uint32_t mod = tg_node(&g, "module", 72), md = tg_node(&g, "dict", 1000);
	tg_name(&g, mod, md, "__dict__");
	uint32_t obj = tg_node(&g, "app.Resource", 100), cache = tg_node(&g, "dict", 300);
	uint32_t wr = tg_node(&g, "weakref.ReferenceType", 80);
	tg_key(&g, md, tg_str(&g, "res"), obj);
	tg_key(&g, md, tg_str(&g, "cache"), cache);
	tg_key(&g, cache, tg_str(&g, "k0"), wr);
	tg_weak(&g, wr, obj);
	tg_root(&g, HS_ROOT_MODULE, mod, "app", NULL);
	ctx c = open_ctx(&g);
	cr_assert_eq(hs_freeable_callbacks(c.f), 0);
	hs_freeable_result r = of(&c, &obj, 1);
	cr_assert_eq(r.retained, 100);
	cr_assert_eq(r.freeable, 100);
	cr_assert_eq(r.callbacks, 0);
	close_ctx(&c);
	tg_free(&g);
}

/* A callback whose weakref dies with the object never runs: the weakref
 * is inside the freed set (CPython calls no callback of a dead weakref). */
Test(freeable, dead_weakref_runs_no_callback)
{
	tgraph g = { 0 };
	uint32_t mod = tg_node(&g, "module", 72), md = tg_node(&g, "dict", 1000);
	tg_name(&g, mod, md, "__dict__");
	uint32_t obj = tg_node(&g, "app.Resource", 100), wr = tg_node(&g, "weakref.ReferenceType", 80);
	uint32_t reg = tg_node(&g, "dict", 600), fz = tg_node(&g, "weakref.finalize", 48);
	uint32_t info = tg_node(&g, "weakref._Info", 56);
	tg_key(&g, md, tg_str(&g, "res"), obj);
	tg_key(&g, md, tg_str(&g, "_registry"), reg);
	tg_key(&g, reg, fz, info);
	tg_name(&g, obj, wr, "self_ref"); /* the object holds its own weakref */
	tg_weak(&g, wr, obj);
	tg_name(&g, wr, fz, "__callback__");
	tg_root(&g, HS_ROOT_MODULE, mod, "app", NULL);
	ctx c = open_ctx(&g);
	hs_freeable_result r = of(&c, &obj, 1);
	cr_assert_eq(r.retained, 180);
	cr_assert_eq(r.freeable, 180);
	cr_assert_eq(r.callbacks, 0);
	close_ctx(&c);
	tg_free(&g);
}

Test(freeable, rejects_nodes_out_of_range)
{
	tgraph g = { 0 };
	idmap x = build_idmap(&g, 1);
	(void)x;
	ctx c = open_ctx(&g);
	hs_freeable_result r;
	uint32_t bad = 1u << 30;
	cr_assert_eq(hs_freeable_compute(&r, c.f, &bad, 1), HS_EINVAL);
	close_ctx(&c);
	tg_free(&g);
}
