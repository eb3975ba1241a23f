"""SQLAlchemy 2: a Session with N rows loaded into a list. The Session's
identity map holds each row's InstanceState strongly and the row only
through a weakref whose callback (state._cleanup) removes the state from
the map: `del items` frees the rows *and* their states, while the list
dominates only the rows.

usage: orm_identity_map.py OUT.hsnap N

Writes OUT.hsnap.json with the list's address and `freed`: the bytes
tracemalloc sees freed by `del items; gc.collect()` (after the dump)."""
import gc
import json
import sys
import tracemalloc

import heapsnap
from sqlalchemy import create_engine, String, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    qty: Mapped[int]


def main(out, n):
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with engine.begin() as c:
        c.execute(insert(Item), [{"id": i, "name": "item-%07d" % i, "qty": i % 97}
                                 for i in range(n)])
    session = Session(engine)
    # warm everything a query creates once (compiled caches, loaders)
    session.query(Item).limit(3).all()
    session.expunge_all()
    gc.collect()
    tracemalloc.start()
    items = session.query(Item).all()
    gc.collect()
    heapsnap.dump(out)
    addr = id(items)
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    del items
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    with open(out + ".json", "w") as f:
        json.dump({"items": "0x%x" % addr, "freed": before - after,
                   "identity_map": len(session.identity_map)}, f)
    session.close()


main(sys.argv[1], int(sys.argv[2]))
