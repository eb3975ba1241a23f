"""Flask + SQLAlchemy ORM: thousands of ORM objects in a session, sizes
match; a per-request leak is found by `leaks` across 4 snapshots, with the
leaking list as its holder."""
from flask import Flask
from sqlalchemy import ForeignKey, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
import heapsnap
import rwcheck as R


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "u"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    posts = relationship("Post", back_populates="user")


class Post(Base):
    __tablename__ = "p"
    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[int] = mapped_column(ForeignKey("u.id"))
    body: Mapped[str] = mapped_column(String(200))
    user = relationship("User", back_populates="posts")


eng = create_engine("sqlite://")
Base.metadata.create_all(eng)
sess = Session(eng)
for i in range(300):
    u = User(name="u%d" % i)
    sess.add(u)
    for j in range(10):
        sess.add(Post(body="b" * j, user=u))
sess.commit()
users = sess.scalars(select(User)).all()
for u in users:
    u.posts
R.sizes(R.path("orm.hsnap"))
j = R.cli_json("paths", R.path("orm.hsnap"), "--type", "__main__.Post")
R.check(j.get("targets", {}).get("count") == 3000, "3000 Post objects: %r" % j.get("targets"))
R.check(j.get("garbage", {}).get("count") == 0, "no Post is garbage")

app = Flask(__name__)
LEAK = []


class Leaked:
    def __init__(self, n):
        self.n = n
        self.payload = {"k%d" % i: i for i in range(20)}


@app.route("/r/<int:n>")
def r(n):
    LEAK.append(Leaked(n))
    if n % 10 == 0 and n:
        heapsnap.dump(R.path("fl_%d.hsnap" % n))
    return "ok"


c = app.test_client()
for i in range(41):
    R.check(c.get("/r/%d" % i).status_code == 200, "request %d" % i)
j = R.cli_json("leaks", *[R.path("fl_%d.hsnap" % n) for n in (10, 20, 30, 40)])
t = [x for x in j.get("types", []) if x["name"] == "__main__.Leaked"]
R.check(t and t[0].get("count_per_snapshot") == 10, "Leaked grows by 10 per snapshot: %r" % (t[:1],))
R.check(t and "dict['LEAK']" in t[0]["paths"][0]["text"], "held through LEAK: %r" % (t[0]["paths"][:1] if t else None))
R.done()
