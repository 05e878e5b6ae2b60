"""Migrations written as code: Alembic, Django and Rails, read into the SQL they run.

Alembic and Django are checked against the tools themselves: Alembic's offline mode (`alembic
upgrade head --sql`) and Django's `sqlmigrate` (against a real PostgreSQL) print the SQL each
migration runs, and the classifier's verdicts on that SQL must equal the verdicts on the file read
as code; Rails against Active Record (Debian's ruby-activerecord) running the migration on a real
PostgreSQL with every statement it sends logged.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from pipeline_kit.migrations import check_paths, migration_files
from pipeline_kit.migrations.postgres import Postgres
from tests.conftest import Cli
from tests.postgres_instance import LocalPostgres
from tests.shared_services import unique_name

ALEMBIC_HEAD = '''"""{doc}"""
from alembic import op
import sqlalchemy as sa

revision = "{revision}"
down_revision = {parent!r}


def upgrade():
'''

# Named so that file order is not revision order: the layout must follow down_revision.
REVISIONS = {
    "f00d_first.py": (
        "aaa1",
        None,
        """    op.execute("SET lock_timeout = '2s'")
    op.create_table("users", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("email", sa.String(50)))
    op.add_column("users", sa.Column("nick", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("age", sa.Integer(), nullable=False))
    op.add_column("users", sa.Column("plan", sa.Text(), server_default="free", nullable=False))
    op.create_index("ix_nick", "users", ["nick"])
    with op.get_context().autocommit_block():
        op.create_index("ix_email", "users", ["email"], postgresql_concurrently=True)
""",
    ),
    "0a11_second.py": (
        "bbb2",
        "aaa1",
        """    op.alter_column("users", "nick", nullable=False)
    op.alter_column("users", "age", type_=sa.BigInteger())
    op.alter_column("users", "email", new_column_name="mail")
    op.create_unique_constraint("uq_mail", "users", ["mail"])
    op.create_check_constraint("ck_age", "users", "age > 0")
    op.execute("UPDATE users SET plan = 'free'")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("plan")
    op.drop_index("ix_nick", table_name="users")
    op.drop_table("users")
""",
    ),
}


def alembic_project(root: Path) -> Path:
    subprocess.run([sys.executable, "-m", "alembic", "init", "migrations"], cwd=root, check=True, capture_output=True)
    ini = root / "alembic.ini"
    ini.write_text(
        re.sub(r"(?m)^sqlalchemy.url = .*$", "sqlalchemy.url = postgresql://u@127.0.0.1/db", ini.read_text())
    )
    for name, (revision, parent, body) in REVISIONS.items():
        text = ALEMBIC_HEAD.format(doc=name, revision=revision, parent=parent) + body
        (root / "migrations" / "versions" / name).write_text(text + "\n\ndef downgrade():\n    pass\n")
    return root / "migrations"


def verdicts(findings: list) -> Counter[tuple[str, str, str]]:  # type: ignore[type-arg]
    return Counter((f.phase, f.lock, f.rule) for f in findings)


def tool_verdicts(sql: str) -> Counter[tuple[str, str, str]]:
    """The verdicts on the SQL a tool printed or sent, its own transaction statements left out."""
    return verdicts([f for f in Postgres().classify(sql, "x") if f.rule != "transaction"])


def test_alembic_migrations_are_judged_as_the_sql_alembic_runs(tmp_path: Path) -> None:
    directory = alembic_project(tmp_path)
    offline = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head", "--sql"], cwd=tmp_path, capture_output=True, text=True
    )
    assert offline.returncode == 0, offline.stderr
    # Alembic's script: its bookkeeping table, then each revision after a `-- Running upgrade` line
    parts = re.split(r"(?m)^-- Running upgrade \S* -> (\S+)$", offline.stdout)
    by_revision = dict(zip(parts[1::2], parts[2::2], strict=True))
    assert list(by_revision) == ["aaa1", "bbb2"]

    files = migration_files([directory])
    assert [f.name for f in files] == ["f00d_first.py", "0a11_second.py"]  # env.py is no migration
    for path in files:
        revision = REVISIONS[path.name][0]
        # BEGIN first: the script's transaction was opened before the bookkeeping table
        sql = "BEGIN;\n" + re.sub(r"(?m)^(INSERT INTO|UPDATE) alembic_version.*$", "", by_revision[revision])
        expected = tool_verdicts(sql)
        ours = verdicts(check_paths([path]))
        assert ours == expected, path.name
    second = {(f.line, f.rule) for f in check_paths([directory / "versions" / "0a11_second.py"])}
    assert {(10, "set-not-null"), (11, "alter-column-type"), (12, "rename-column"), (17, "drop-column")} <= second


def test_alembic_code_the_kit_cannot_read_is_review(tmp_path: Path) -> None:
    path = tmp_path / "c0de_opaque.py"
    body = """    conn = op.get_bind()
    conn.execute(sa.text("DELETE FROM users"))
    table = "users"
    op.drop_column(table, "email")
    for name in ("a", "b"):
        op.add_column("users", sa.Column(name, sa.Text()))
    # pipeline-kit: allow drop-column because nothing reads legacy since 2.0
    op.drop_column("users", "legacy")
"""
    path.write_text(ALEMBIC_HEAD.format(doc="x", revision="c0de", parent=None) + body)
    found = [(f.line, f.phase, f.rule, f.waived) for f in check_paths([path])]
    assert (11, "review", "opaque-operation", None) in found  # conn.execute
    assert (13, "review", "opaque-operation", None) in found  # a table name from a variable
    assert (14, "review", "opaque-operation", None) in found  # a loop
    assert (17, "contract", "drop-column", "nothing reads legacy since 2.0") in found
    broken = tmp_path / "bad.py"
    broken.write_text(ALEMBIC_HEAD.format(doc="x", revision="bad", parent=None) + "    op.drop_table(\n")
    (finding,) = check_paths([broken])
    assert (finding.phase, finding.rule) == ("review", "unparsable")


DJANGO = """from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField(model_name="order", name="note", field=models.TextField(null=True)),
        migrations.AddField(model_name="order", name="paid", field=models.BooleanField(default=False)),
        migrations.AddField(model_name="order", name="state", field=models.CharField(max_length=9, db_default="new")),
        migrations.AddField(
            model_name="order",
            name="customer",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, to="shop.customer"),
        ),
        migrations.RemoveField(model_name="order", name="legacy"),
        migrations.RenameField(model_name="order", old_name="total", new_name="amount"),
        migrations.AlterField(model_name="order", name="note", field=models.TextField()),
        migrations.AddIndex(model_name="order", index=models.Index(fields=["note"], name="order_note_idx")),
        migrations.RunSQL("UPDATE shop_order SET note = '' WHERE note IS NULL"),
        migrations.RunPython(migrations.RunPython.noop),
        migrations.AlterModelOptions(name="order", options={"ordering": ["id"]}),
        migrations.DeleteModel(name="coupon"),
    ]
"""


def test_django_operations_are_judged_as_the_sql_django_runs(tmp_path: Path) -> None:
    directory = tmp_path / "shop" / "migrations"
    directory.mkdir(parents=True)
    (directory / "__init__.py").write_text("")
    (directory / "0002_changes.py").write_text(DJANGO)
    found = {(f.line, f.rule): f for f in check_paths([directory])}
    rules = sorted(found)
    assert (9, "add-column") in rules  # nullable: expand
    # Django adds a NOT NULL field through a default it drops right after: old INSERTs then fail
    assert found[10, "add-column"].phase == "expand" and found[10, "drop-default"].phase == "contract"
    assert (11, "drop-default") not in rules  # db_default stays in the database
    assert found[12, "index-not-concurrent"].lock == "blocks"  # a ForeignKey gets an index
    assert "customer_id" in found[12, "add-column"].message
    assert found[17, "drop-column"].phase == "contract" and found[18, "rename-column"].phase == "contract"
    assert found[19, "opaque-operation"].phase == "review"  # AlterField
    assert found[20, "index-not-concurrent"].lock == "blocks"
    assert found[21, "backfill"].phase == "migrate"
    assert found[22, "opaque-operation"].phase == "review"  # RunPython
    assert not [r for r in rules if r[0] == 23]  # AlterModelOptions reaches no database
    assert found[24, "drop-table"].phase == "contract"
    assert "DeleteModel" in found[24, "drop-table"].message


RAILS = """class Changes < ActiveRecord::Migration[7.1]
  disable_ddl_transaction!

  def change
    add_column :users, :nick, :string, null: true
    add_column :users, :age, :integer, null: false
    # pipeline-kit: allow index-not-concurrent because users has ten rows
    add_index :users, :nick
    add_index :users, [:email, :nick], unique: true, algorithm: :concurrently
    remove_column :users, :legacy, :string
    rename_column :users, :name, :full_name
    change_column_null :users, :email, false
    add_reference :orders, :user, foreign_key: true, index: { algorithm: :concurrently }
    add_foreign_key :orders, :customers, validate: false
    change_table :users do |t|
      t.string :city
      t.remove :zip
    end
    execute <<~SQL
      UPDATE users SET nick = full_name
    SQL
    User.update_all(active: true)
  end

  def down
    drop_table :users
  end
end
"""


def test_rails_statements_are_judged_as_the_sql_active_record_runs(tmp_path: Path) -> None:
    directory = tmp_path / "db" / "migrate"
    directory.mkdir(parents=True)
    (directory / "20240101000000_changes.rb").write_text(RAILS)
    (directory / "20231231000000_older.rb").write_text(RAILS.replace("disable_ddl_transaction!", ""))
    files = migration_files([directory])
    assert [f.name for f in files] == ["20231231000000_older.rb", "20240101000000_changes.rb"]
    found = {(f.line, f.rule): f for f in check_paths([files[1]])}
    assert found[5, "add-column"].phase == "expand"
    assert found[6, "add-column-not-null-without-default"].phase == "contract"
    assert found[8, "index-not-concurrent"].waived == "users has ten rows"
    assert found[9, "unique-index"].phase == "contract"
    assert found[10, "drop-column"].phase == found[11, "rename-column"].phase == "contract"
    assert found[12, "set-not-null"].lock == "blocks"
    assert found[13, "foreign-key-validated"].lock == "blocks"
    assert found[13, "create-index-concurrently"].lock == "safe"
    assert found[14, "foreign-key-not-valid"].phase == "contract"  # new writes are checked
    assert found[16, "add-column"].phase == "expand" and found[17, "drop-column"].phase == "contract"
    assert found[19, "unbatched-backfill"].phase == "migrate"
    assert found[22, "opaque-operation"].phase == "review"
    assert not [key for key in found if key[0] >= 25]  # `down` is not a forward step
    # in the migration's own transaction a concurrent index cannot be built: Active Record fails
    older = {(f.line, f.rule) for f in check_paths([files[0]])}
    assert (9, "concurrent-index-in-transaction") in older


def test_the_cli_reads_every_layout_in_one_directory(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "001_add.sql").write_text("SET lock_timeout = '2s';\nALTER TABLE t ADD COLUMN c text;\n")
    (tmp_path / "db" / "20240101000000_drop.rb").write_text(RAILS)
    (tmp_path / "db" / "helpers.py").write_text("def upgrade():\n    pass\n")  # no migration: skipped
    result = cli(["migrations", "check", "--json", "db"], cwd=tmp_path)
    assert result.code == 1, result.err
    files = {s["file"] for s in json.loads(result.out)["statements"]}
    assert files == {"db/001_add.sql", "db/20240101000000_drop.rb"}


def test_a_django_migration_python_cannot_parse_is_review(tmp_path: Path) -> None:
    path = tmp_path / "0003_broken.py"
    path.write_text("from django.db import migrations\n\nclass Migration(migrations.Migration):\n    operations = [\n")
    (finding,) = check_paths([path])
    assert (finding.phase, finding.rule) == ("review", "unparsable")


DJANGO_INITIAL = """from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(name="customer", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.CreateModel(name="coupon", fields=[("id", models.BigAutoField(primary_key=True))]),
        migrations.CreateModel(
            name="order",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("total", models.IntegerField()),
                ("legacy", models.TextField(null=True)),
            ],
        ),
    ]
"""


def test_django_migrations_are_judged_as_the_sql_django_runs(tmp_path: Path, postgres_server: LocalPostgres) -> None:
    """Django's own `sqlmigrate` on a real PostgreSQL (Django asks the database for its version
    and quotes defaults through the driver), compared verdict for verdict."""
    project = tmp_path / "site"
    migrations = project / "shop" / "migrations"
    migrations.mkdir(parents=True)
    (project / "shop" / "__init__.py").write_text("")
    (migrations / "__init__.py").write_text("")
    (migrations / "0001_initial.py").write_text(DJANGO_INITIAL)
    # what the kit reads as review (RunPython, AlterField) is checked on its own above
    judged = "\n".join(line for line in DJANGO.splitlines() if "RunPython" not in line and "AlterField" not in line)
    (migrations / "0002_changes.py").write_text(judged + "\n")
    site = unique_name("site")  # the server is the run's
    assert postgres_server.psql("postgres", f"CREATE DATABASE {site}").returncode == 0
    (project / "settings.py").write_text(
        "INSTALLED_APPS = ['shop']\nUSE_TZ = True\nSECRET_KEY = 'test'\n"
        "DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'\n"
        f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.postgresql', 'NAME': '{site}', "
        f"'USER': 'postgres', 'HOST': '127.0.0.1', 'PORT': {postgres_server.port}}}}}\n"
    )
    printed = subprocess.run(
        [sys.executable, "-m", "django", "sqlmigrate", "shop", "0002"],
        cwd=project,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "settings", "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    expected = tool_verdicts(printed.stdout)
    assert {("contract", "safe", "drop-column"), ("contract", "safe", "drop-default")} <= set(expected)
    ours = verdicts(check_paths([migrations / "0002_changes.py"]))
    assert ours == expected, printed.stdout


# Runs the migrations in a directory with Active Record and prints every statement it sends (its
# own catalog reads and bookkeeping tables are left out: they are Active Record's, not the file's).
ACTIVE_RECORD = """require "active_record"
ActiveRecord::Base.establish_connection(ENV.fetch("DATABASE_URL"))
ActiveRecord::Migration.verbose = false
ActiveSupport::Notifications.subscribe("sql.active_record") do |*, payload|
  sql = payload[:sql].strip
  next if sql.match?(/\\A(SELECT|SHOW|SET )/i) || sql.match?(/schema_migrations|ar_internal_metadata/)
  puts sql.end_with?(";") ? sql : sql + ";"
end
ActiveRecord::MigrationContext.new(ARGV[0], ActiveRecord::SchemaMigration).migrate
"""
RAILS_SCHEMA = (
    "CREATE TABLE users (id bigserial PRIMARY KEY, email text, name text, legacy text, zip text);"
    "CREATE TABLE customers (id bigserial PRIMARY KEY);"
    "CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint);"
)


def test_rails_migrations_are_judged_as_the_sql_active_record_runs(
    tmp_path: Path, postgres_server: LocalPostgres
) -> None:
    directory = tmp_path / "db" / "migrate"
    directory.mkdir(parents=True)
    # Debian's Active Record is 6.1; model code (review) is checked on its own above
    text = RAILS.replace("Migration[7.1]", "Migration[6.1]").replace("    User.update_all(active: true)\n", "")
    migration = directory / "20240101000000_changes.rb"
    migration.write_text(text)
    (tmp_path / "run.rb").write_text(ACTIVE_RECORD)
    app = unique_name("app")  # the server is the run's
    assert postgres_server.psql("postgres", f"CREATE DATABASE {app}").returncode == 0
    assert postgres_server.psql(app, RAILS_SCHEMA).returncode == 0
    url = f"postgres://postgres@127.0.0.1:{postgres_server.port}/{app}"
    ran = subprocess.run(
        ["ruby", str(tmp_path / "run.rb"), str(directory)],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    expected = tool_verdicts(ran.stdout)
    assert {("contract", "safe", "drop-column"), ("contract", "blocks", "set-not-null")} <= set(expected)
    assert verdicts(check_paths([migration])) == expected, ran.stdout
