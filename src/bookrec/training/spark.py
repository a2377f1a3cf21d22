"""The ALS recommender fitted on Apache Spark MLlib (`bookrec train --algo als --engine spark`).

The ratings reach Spark in one of two ways: from PostgreSQL through a partitioned JDBC read
(when the PostgreSQL JDBC driver jar is present), or as a Parquet export of the snapshot the
training loaded (SQLite, or PostgreSQL without the jar). Weighting, the evaluation gate's
held-out ratings and the BM25 statistics are computed in Spark SQL, Spark's implicit ALS
fits the factors, and only the item factors (books x factors) come back to this process,
where they are installed into an ordinary `AlsRecommender`: the artifacts, fold-in, reasons,
precomputed lists and the gate are those of a local ALS version.

Hyper-parameters keep the local ALS's meanings (docs/spark.md, "Same parameters"):

- confidence: Spark's is `1 + alpha * r`, implicit's (what `AlsConfig.alpha` scales) is
  `c = alpha * weight`; Spark gets `r = c - 1` and `alpha = 1`, so the confidences are equal
  (a confidence below 1 is raised to just above 1: Spark needs r > 0 for a positive).
- regularization: Spark multiplies its `regParam` by each row's number of ratings (ALS-WR),
  implicit does not; Spark gets `regParam = lambda / (ratings per reader)`, so that a reader
  with the mean number of ratings is regularised as under implicit.

Spark runs in other threads of this process (py4j) and a JVM; a fit waits in short slices,
reporting Spark's active stage as progress, so an interruption (the job fenced, Ctrl-C)
cancels the Spark jobs instead of waiting for them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.engine import make_url

from bookrec.config import Settings
from bookrec.errors import InvalidInput, ServiceUnavailable
from bookrec.recsys.als import AlsRecommender
from bookrec.recsys.data import Catalog, Interactions

Progress = Callable[[str, float], None]

#: Oldest Java that Spark 4 runs on.
MIN_JAVA = 17
#: Where Debian's libpostgresql-jdbc-java puts the driver.
DEBIAN_JDBC_JAR = Path("/usr/share/java/postgresql.jar")
#: Spark's r for a confidence of 1 or less (it must be > 0 to count as a positive).
MIN_SPARK_RATING = 1e-3
#: ALS lineage is cut every this many iterations (needs the checkpoint directory).
CHECKPOINT_INTERVAL = 10
INT32_MAX = 2**31 - 1
_MASTER = re.compile(
    r"^(local(\[(\*|[1-9][0-9]*)(,[1-9][0-9]*)?\])?"
    r"|spark://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(,[A-Za-z0-9.\-]+(:[0-9]{1,5})?)*"
    r"|yarn|k8s://https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?)$"
)


def check_master(master: str) -> str:
    """A Spark master URL bookrec accepts: local[*], local[N], spark://host:port[,...],
    yarn or k8s://https://host:port; InvalidInput otherwise."""
    if not _MASTER.match(master):
        raise InvalidInput(
            f"bad Spark master {master!r}: use local[*], local[N], spark://HOST:PORT, yarn "
            "or k8s://https://HOST:PORT",
            field="spark_master",
        )
    return master


def find_java() -> tuple[str, str]:
    """(path of the `java` Spark will start, its version); ServiceUnavailable naming what is
    missing when there is no Java 17+ (JAVA_HOME first, as Spark's launcher does)."""
    import os

    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        java: str | None = str(Path(java_home) / "bin" / "java")
        if not Path(java).is_file():  # type: ignore[arg-type]
            raise ServiceUnavailable(
                f"training on Spark needs Java {MIN_JAVA}+, but JAVA_HOME={java_home} has no "
                "bin/java: point JAVA_HOME at a Java installation or unset it"
            )
    else:
        java = shutil.which("java")
    if java is None:
        raise ServiceUnavailable(
            f"training on Spark needs Java {MIN_JAVA} or newer, and none was found: JAVA_HOME "
            "is not set and there is no `java` on PATH (install a JRE, e.g. "
            "`apt-get install default-jre-headless`)"
        )
    try:
        shown = subprocess.run(  # noqa: S603 - the java Spark itself would start
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise ServiceUnavailable(f"training on Spark: {java} cannot run: {exc}") from None
    found = re.search(r'version "(\d+)(?:\.(\d+))?[^"]*"', shown.stderr + shown.stdout)
    if found is None:
        raise ServiceUnavailable(f"training on Spark: `{java} -version` says no version")
    major = int(found.group(1))
    if major == 1 and found.group(2):  # "1.8.0" is Java 8
        major = int(found.group(2))
    if major < MIN_JAVA:
        raise ServiceUnavailable(
            f"training on Spark needs Java {MIN_JAVA} or newer; {java} is Java {major}"
        )
    return java, found.group(0).split('"')[1]


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise ServiceUnavailable(
            "training on Spark needs pyspark: install bookrec with its `spark` extra "
            "(`make install` does; or `pip install 'bookrec[spark]'`)"
        ) from None
    return pyspark


def jdbc_jar(settings: Settings) -> Path | None:
    """The PostgreSQL JDBC driver jar to read with, if there is one."""
    if settings.spark_jdbc_jar is not None:
        if not settings.spark_jdbc_jar.is_file():
            raise ServiceUnavailable(
                f"BOOKREC_SPARK_JDBC_JAR={settings.spark_jdbc_jar} is not a file"
            )
        return settings.spark_jdbc_jar
    return DEBIAN_JDBC_JAR if DEBIAN_JDBC_JAR.is_file() else None


def jdbc_options(sqlalchemy_url: str) -> dict[str, str]:
    """Spark's JDBC options (url, user, password, driver) for a PostgreSQL SQLAlchemy URL."""
    url = make_url(sqlalchemy_url)
    host = url.host or "localhost"
    options = {
        "url": f"jdbc:postgresql://{host}:{url.port or 5432}/{url.database or ''}",
        "driver": "org.postgresql.Driver",
    }
    if url.username:
        options["user"] = url.username
    if url.password:
        options["password"] = str(url.password)
    return options


class SparkAls:
    """A Spark session holding the ratings, fitting `AlsRecommender`s; a context manager.

    `with SparkAls(settings, snapshot_interactions, catalog, progress) as spark:` starts the
    session (checking Java first) and loads the ratings; `spark.fit(model, held_out)` fits;
    leaving stops the session and deletes the export. `info` is what the version records.
    """

    def __init__(
        self,
        settings: Settings,
        interactions: Interactions,
        catalog: Catalog,
        progress: Progress,
        *,
        master: str | None = None,
    ) -> None:
        self.settings = settings
        self.interactions = interactions
        self.catalog = catalog
        self.progress = progress
        self.master = check_master(master or settings.spark_master)
        self.info: dict[str, Any] = {"name": "spark", "master": self.master}
        self._work: Path | None = None
        self._session: Any = None
        self._ratings: Any = None
        self._group = f"bookrec-{uuid.uuid4().hex[:12]}"
        self.partitions = settings.spark_partitions

    # -- session -----------------------------------------------------------------------------
    def __enter__(self) -> SparkAls:
        _pyspark()
        _java, java_version = find_java()
        settings = self.settings
        jar = jdbc_jar(settings) if settings.sqlalchemy_url.startswith("postgresql") else None
        base = settings.spark_work_dir or settings.var_dir / "spark"
        base.mkdir(parents=True, exist_ok=True)
        self._work = Path(tempfile.mkdtemp(prefix="train-", dir=base)).resolve()
        try:
            self._start(jar)
            self.info.update(
                spark_version=self._session.version,
                java_version=java_version,
                source="jdbc" if jar is not None else "parquet",
                partitions=self.partitions,
            )
            self._ratings = self._jdbc_ratings(jar) if jar is not None else self._exported_ratings()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self, jar: Path | None) -> None:
        from pyspark.sql import SparkSession

        settings = self.settings
        assert self._work is not None
        builder = (
            SparkSession.builder.master(self.master)
            .appName("bookrec-train")
            .config("spark.driver.memory", settings.spark_driver_memory)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.local.dir", str(self._work / "tmp"))
            .config("spark.sql.adaptive.enabled", "true")
        )
        if settings.spark_executor_memory:
            builder = builder.config("spark.executor.memory", settings.spark_executor_memory)
        if settings.spark_partitions:
            builder = builder.config("spark.sql.shuffle.partitions", settings.spark_partitions)
        if jar is not None:
            builder = builder.config("spark.jars", str(jar))
        self.progress("starting Spark", 10.0)
        try:
            self._session = builder.getOrCreate()
        except Exception as exc:
            raise ServiceUnavailable(
                f"Spark could not start (master {self.master}): {_first_line(exc)}"
            ) from None
        context = self._session.sparkContext
        context.setLogLevel("ERROR")
        context.setCheckpointDir(str(self._work / "checkpoints"))
        self.partitions = settings.spark_partitions or max(context.defaultParallelism, 2)
        if not settings.spark_partitions:
            self._session.conf.set("spark.sql.shuffle.partitions", str(self.partitions))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            try:
                self._session.stop()
            finally:
                self._session = None
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None

    # -- the ratings ---------------------------------------------------------------------------
    def _exported_ratings(self) -> Any:
        """The snapshot as Parquet in the work directory (every executor must see it)."""
        assert self._work is not None
        data = self.interactions
        users, items = data.users.ids[data.user_index], data.items.ids[data.item_index]
        _check_int32(users, items)
        table = pa.table(
            {
                "user": pa.array(users, type=pa.int32()),
                "item": pa.array(items, type=pa.int32()),
                "rating": pa.array(data.rating, type=pa.float32()),
            }
        )
        path = self._work / "ratings.parquet"
        pq.write_table(table, path, row_group_size=1_000_000)
        self.info["export_bytes"] = path.stat().st_size
        return self._session.read.parquet(path.as_uri())

    def _jdbc_ratings(self, jar: Path) -> Any:
        """The ratings read from PostgreSQL in `partitions` ranges of reader ids."""
        data = self.interactions
        readers = data.users.ids[data.user_index]
        lower = int(readers.min()) if len(readers) else 0
        upper = int(readers.max()) + 1 if len(readers) else 1
        options = jdbc_options(self.settings.sqlalchemy_url)
        frame = (
            self._session.read.format("jdbc")
            .options(**options)
            .option(
                "dbtable",
                "(SELECT reader_id, book_id, CAST(rating AS real) AS rating FROM ratings) r",
            )
            .option("partitionColumn", "reader_id")
            .option("lowerBound", str(lower))
            .option("upperBound", str(upper))
            .option("numPartitions", str(self.partitions))
            .option("fetchsize", "10000")
            .load()
        )
        self.info["jdbc"] = {"url": options["url"], "jar": str(jar), "reader_id": [lower, upper]}
        return frame.selectExpr(
            "CAST(reader_id AS INT) AS user", "CAST(book_id AS INT) AS item", "rating"
        )

    # -- fitting -------------------------------------------------------------------------------
    def fit(
        self, model: AlsRecommender, held_out: Interactions | None, stage: str, percent: float
    ) -> AlsRecommender:
        """Fit `model` on the ratings less `held_out` (the gate's part), on Spark."""
        return self._wait(lambda: self._fit(model, held_out), stage, percent)

    def _fit(self, model: AlsRecommender, held_out: Interactions | None) -> AlsRecommender:
        from pyspark.ml.recommendation import ALS
        from pyspark.sql import functions as F  # noqa: N812 - the usual name

        cfg = model.config
        session = self._session
        ratings = self._ratings
        if held_out is not None and len(held_out):
            pairs = list(
                zip(
                    held_out.users.ids[held_out.user_index].tolist(),
                    held_out.items.ids[held_out.item_index].tolist(),
                    strict=True,
                )
            )
            excluded = session.createDataFrame(pairs, "user INT, item INT")
            ratings = ratings.join(F.broadcast(excluded), ["user", "item"], "left_anti")
        readers = max(len(self.interactions.users), 1)
        floor = max(cfg.min_rating, float(np.finfo(np.float32).tiny))
        kept = ratings.where(F.col("rating") >= floor).cache()
        count, total = kept.agg(F.count("*"), F.sum("rating")).first()
        if not count:
            raise InvalidInput("there are no ratings to train on after min_rating")
        idf = None
        average_length = 1.0
        if cfg.weighting == "binary":
            confidence = F.lit(cfg.alpha)
        elif cfg.weighting == "rating":
            confidence = F.col("rating") * F.lit(cfg.alpha)
        else:
            average_length = float(total) / readers if total else 1.0
            frequency = kept.groupBy("item").agg(F.count("*").alias("n")).toArrow()
            idf = self._idf(frequency, readers)
            idf_frame = session.createDataFrame(
                list(zip(self.catalog.items.ids.tolist(), idf.astype(float).tolist(), strict=True)),
                "item INT, idf DOUBLE",
            )
            lengths = kept.groupBy("user").agg(F.sum("rating").alias("length"))
            kept = kept.join(lengths, "user").join(F.broadcast(idf_frame), "item")
            norm = F.lit(1 - cfg.bm25_b) + F.lit(cfg.bm25_b) * F.col("length") / average_length
            confidence = (
                F.col("rating")
                * F.lit(cfg.alpha * (cfg.bm25_k1 + 1))
                / (F.lit(cfg.bm25_k1) * norm + F.col("rating"))
                * F.col("idf")
            )
        prepared = kept.select(
            "user",
            "item",
            F.greatest(confidence - F.lit(1.0), F.lit(MIN_SPARK_RATING)).alias("strength"),
        )
        als = ALS(
            rank=cfg.factors,
            maxIter=cfg.iterations,
            regParam=cfg.regularization * readers / count,
            alpha=1.0,
            implicitPrefs=True,
            userCol="user",
            itemCol="item",
            ratingCol="strength",
            seed=cfg.seed,
            numUserBlocks=self.partitions,
            numItemBlocks=self.partitions,
            checkpointInterval=CHECKPOINT_INTERVAL,
        )
        try:
            fitted = als.fit(prepared)
            factors = fitted.itemFactors.toArrow()
        finally:
            kept.unpersist()
        self.info["spark_reg_param"] = cfg.regularization * readers / count
        return model.install_factors(
            self._item_factors(factors, cfg.factors),
            self.catalog,
            idf=idf,
            average_length=average_length,
        )

    def _idf(self, frequency: pa.Table, readers: int) -> np.ndarray:
        """BM25 idf of every catalog book, as `AlsRecommender._fit_bm25` computes it."""
        counts = np.zeros(len(self.catalog.items), dtype=np.float64)
        positions = self.catalog.items.index(frequency.column("item").to_numpy())
        found = positions >= 0
        counts[positions[found]] = frequency.column("n").to_numpy()[found]
        idf: np.ndarray = np.maximum(np.log(readers) - np.log1p(counts), 0.01)
        return idf.astype(np.float32)

    def _item_factors(self, table: pa.Table, factors: int) -> np.ndarray:
        """Spark's (id, features) rows as a books x factors matrix in catalog order; books
        nobody rated keep zero factors, as under implicit."""
        result = np.zeros((len(self.catalog.items), factors), dtype=np.float32)
        if table.num_rows == 0:
            return result
        features = table.column("features").combine_chunks()
        values = features.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        positions = self.catalog.items.index(table.column("id").to_numpy())
        found = positions >= 0
        result[positions[found]] = values.reshape(table.num_rows, factors)[found]
        return result

    def _wait(
        self, work: Callable[[], AlsRecommender], stage: str, percent: float
    ) -> AlsRecommender:
        """Run `work` in a thread of its own, report Spark's stages, cancel on interruption."""
        context = self._session.sparkContext
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                context.setJobGroup(self._group, stage, interruptOnCancel=True)
                outcome["value"] = work()
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=run, name="spark-fit", daemon=True)
        self.progress(f"{stage} on Spark", percent)
        thread.start()
        try:
            while thread.is_alive():
                thread.join(0.5)
                self._report(context, stage, percent)
        except BaseException:
            context.cancelJobGroup(self._group)
            thread.join(60)
            raise
        if "error" in outcome:
            error = outcome["error"]
            if isinstance(error, InvalidInput | ServiceUnavailable):
                raise error
            raise RuntimeError(f"the Spark job failed: {_first_line(error)}") from error
        fitted: AlsRecommender = outcome["value"]
        return fitted

    def _report(self, context: Any, stage: str, percent: float) -> None:
        tracker = context.statusTracker()
        active = tracker.getActiveStageIds()
        if not active:
            return
        info = tracker.getStageInfo(max(active))
        if info is None:
            return
        name = info.name.split(" at ")[0]
        self.progress(
            f"{stage} on Spark: stage {info.stageId} {name} "
            f"({info.numCompletedTasks}/{info.numTasks} tasks)",
            percent,
        )


def _check_int32(*arrays: np.ndarray) -> None:
    for array in arrays:
        if len(array) and (int(array.max()) > INT32_MAX or int(array.min()) < 0):
            raise InvalidInput("Spark's ALS needs reader and book ids between 0 and 2^31 - 1")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
