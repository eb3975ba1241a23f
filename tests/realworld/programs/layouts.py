"""Instance layouts real code produces (managed dicts, inline values,
__class__ assignment, materialised and replaced __dict__, slots + dict,
exceptions, module subclasses, deleted attributes, 60 attributes): each
attribute is reached from its owner under its name, sizes match."""
import sys
import rwcheck as R


class V:
    def __init__(self, tag): self.tag = tag
class A: pass
class B: pass
class Many: pass
class SD(dict): pass
class SlotsDict:
    __slots__ = ("s1", "__dict__")
class Exc(Exception): pass
class ModSub(type(sys)): pass
class LSlots(list):
    __slots__ = ("ls",)
class Deleted: pass


expect = []


def attr(o, name):
    v = V(name); setattr(o, name, v); expect.append((o, name, v))


a = A(); attr(a, "x"); attr(a, "y")
b = A(); attr(b, "x"); b.__class__ = B
m = Many()
for i in range(60):
    attr(m, "a%d" % i)
sd = A(); attr(sd, "p"); sd.__dict__ = SD(sd.__dict__)
sl = SlotsDict(); attr(sl, "s1"); attr(sl, "d1")
e = Exc("msg"); attr(e, "ctx")
ms = ModSub("mm"); attr(ms, "mattr")
ls = LSlots([1]); attr(ls, "ls")
dl = Deleted(); attr(dl, "k1"); attr(dl, "k2"); attr(dl, "k3"); del dl.k2
expect = [x for x in expect if not (x[0] is dl and x[1] == "k2")]
vv = A(); attr(vv, "q"); vars(vv)
vv2 = A(); attr(vv2, "q2"); keep = vv2.__dict__; attr(vv2, "q3")

r, s = R.sizes(R.path("layouts.hsnap"))
for owner, name, v in expect:
    on = s.nodes[id(owner)]
    got = []
    for e1 in on.edges:
        if e1.target == id(v):
            got.append(s.label_text(e1))
        n1 = s.nodes.get(e1.target)
        if n1 is not None and s.label_text(e1) == "__dict__":
            got += ["__dict__" + s.label_text(e2) for e2 in n1.edges if e2.target == id(v)]
    R.check("." + name in got or "__dict__['%s']" % name in got,
            "%s.%s reached under its name, got %r" % (type(owner).__name__, name, got))
R.done()
