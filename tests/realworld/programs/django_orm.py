"""Django: settings in code, ORM models on sqlite, a request through the
test client that dumps from the view: the model instances' path starts at
the view's local, none of them is garbage, sizes match."""
import django
from django.conf import settings

settings.configure(DEBUG=False, SECRET_KEY="x", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
                   INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
                   DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
                   MIDDLEWARE=[])
django.setup()
from django.db import connection, models  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import path  # noqa: E402
import rwcheck as R  # noqa: E402


class Author(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        app_label = "auth"


class Book(models.Model):
    title = models.CharField(max_length=100)
    author = models.ForeignKey(Author, on_delete=models.CASCADE)

    class Meta:
        app_label = "auth"


with connection.schema_editor() as se:
    se.create_model(Author)
    se.create_model(Book)
a = Author.objects.create(name="Ann")
Book.objects.bulk_create([Book(title="b%d" % i, author=a) for i in range(2000)])


def view(request):
    books = list(Book.objects.select_related("author").all())
    R.sizes(R.path("dj.hsnap"))
    return JsonResponse({"n": len(books)})


urlpatterns = [path("x", view)]
resp = Client().get("/x")
R.check(resp.status_code == 200, "the request succeeds: %d" % resp.status_code)
j = R.cli_json("paths", R.path("dj.hsnap"), "--type", "__main__.Book")
paths = j.get("paths", [])
R.check(j.get("targets", {}).get("count") == 2000, "2000 Book objects: %r" % j.get("targets"))
R.check(paths and paths[0]["root"]["kind"] == "local" and paths[0]["root"]["detail"] == "books",
        "Book's path starts at the view's local 'books': %r" % [p["text"] for p in paths[:3]])
R.check(j.get("garbage", {}).get("count") == 0, "no Book is garbage")
R.done()
