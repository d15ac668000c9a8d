"""Every data test of the project can fail: rows that break each one make dbt report it
by name as failed, with its failing rows' count, and the result not ok."""

from __future__ import annotations

from datetime import date

import pytest

from data_platform.transform import run_transform
from tests.transform.conftest import fetch, insert_counts, insert_location

DAY = date(2024, 3, 5)

# The sources' tests and the singular test on the counts, each broken by the rows below.
SOURCE_TESTS = {
    "source_accepted_values_pedestrian_sensor_locations_location_type__Indoor__Outdoor__Indoor_Blix__Outdoor_Blix",
    "source_accepted_values_pedestrian_sensor_locations_status__A__I__R",
    "source_accepted_values_pedestrian_sensor_locations_direction_1__North__South__East__West__In__Out",
    "source_accepted_values_pedestrian_sensor_locations_direction_2__North__South__East__West__In__Out",
    "source_iso_date_pedestrian_sensor_locations_installation_date",
    "source_iso_date_pedestrian_hourly_counts_sensing_date",
    "source_value_between_pedestrian_sensor_locations_latitude__90___90",
    "source_value_between_pedestrian_sensor_locations_longitude__180___180",
    "assert_no_negative_counts",
}
MODEL_TESTS = {
    "at_most_rows_per_group_pedestrian_top10_daily_sensing_date__10",
    "at_most_rows_per_group_pedestrian_top10_monthly_month_start__10",
    "value_between_pedestrian_top10_daily_rank__10__1",
    "value_between_pedestrian_top10_monthly_rank__10__1",
    "value_between_pedestrian_daily_totals_hours_counted__25__1",
    "value_between_pedestrian_monthly_totals_days_counted__31__1",
    "unique_combination_pedestrian_daily_totals_location_id__sensing_date",
    "unique_combination_pedestrian_top10_daily_sensing_date__rank",
    "unique_combination_pedestrian_top10_daily_sensing_date__location_id",
    "unique_combination_pedestrian_monthly_totals_location_id__month_start",
    "not_null_pedestrian_daily_totals_location_id",
    "relationships_pedestrian_top10_daily_location_id__location_id__ref_pedestrian_daily_totals_",
    "unique_pedestrian_yearly_change_location_id",
    "assert_top10_complete",
}


@pytest.mark.slow
def test_every_data_test_fails_on_rows_that_break_it(pg) -> None:
    # Good data first: 11 sensors on one day, a 2023 and 2024 window for the yearly change.
    for lid in range(1, 12):
        insert_location(pg, lid)
    insert_counts(pg, [(lid, DAY, 8, 10 * lid) for lid in range(1, 12)])
    insert_counts(pg, [(1, date(2023, 3, 5), 8, 10)])
    built = run_transform(
        vars={"footfall_before_start": "2023-01-01", "footfall_after_start": "2024-01-01"}
    )
    assert built.ok, built.render()
    assert fetch(pg, "SELECT count(*) FROM analytics.pedestrian_yearly_change") == [(1,)]

    # Sources: one bad value per test; BOTH ends of each range (OR, not AND).
    insert_location(
        pg,
        20,
        location_type="Outdoors",
        status="X",
        direction_1="Up",
        direction_2="Down",
        installation_date="20190-05-01",  # Postgres takes year 20190
        latitude=-95.0,  # below the minimum
        longitude=200.0,  # above the maximum
    )
    insert_counts(pg, [(20, DAY, 9, -5), (20, "20240-01-01", 0, 3)])
    with pg.cursor() as cur:  # an empty count: only warns
        cur.execute(
            "INSERT INTO pedestrian.hourly_counts (location_id, sensing_date, hourday, "
            "pedestriancount, dp__load_id) VALUES (20, %s, 10, NULL, 0)",
            (DAY,),
        )
    # Built tables: rows the models would never produce.
    with pg.cursor() as cur:
        cur.execute(
            """
            INSERT INTO analytics.pedestrian_daily_totals
                SELECT location_id, location_name, sensing_date, pedestrian_count, 26
                FROM analytics.pedestrian_daily_totals WHERE location_id = 1
                UNION ALL SELECT NULL, NULL, NULL, NULL, NULL;
            INSERT INTO analytics.pedestrian_monthly_totals
                SELECT * FROM analytics.pedestrian_monthly_totals WHERE location_id = 1
                UNION ALL SELECT NULL, NULL, NULL, NULL, 0;
            INSERT INTO analytics.pedestrian_top10_daily
                VALUES (%(day)s, 11, 424242, 'nowhere', 1), (%(day)s, 1, 11, 'Place 11', 110),
                       (NULL, NULL, NULL, NULL, NULL);
            INSERT INTO analytics.pedestrian_top10_monthly
                VALUES ('2024-03-01', 0, 424242, 'nowhere', 1), ('2024-03-01', 1, 1, 'x', 1),
                       ('2024-03-01', 2, 1, 'x', 1), ('2024-03-01', 3, 1, 'x', 1),
                       (NULL, NULL, NULL, NULL, NULL);
            INSERT INTO analytics.pedestrian_yearly_change
                SELECT * FROM analytics.pedestrian_yearly_change
                UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL;
            """,
            {"day": DAY},
        )

    result = run_transform(["path:models/pedestrian"], command="test")

    assert not result.ok
    tests = {node.name: node for node in result.nodes if node.kind == "test"}
    assert set(tests) >= SOURCE_TESTS | MODEL_TESTS
    # Every test of the project failed here, but the warning-only relationship to the
    # locations (sensor 20's location row exists; it warns when one is missing) and the
    # warning on empty counts.
    not_failed = {name: node.status for name, node in tests.items() if node.status != "fail"}
    relationship = (
        "source_relationships_pedestrian_hourly_counts_location_id__location_id__source_"
        "pedestrian_sensor_locations_"
    )
    assert not_failed == {
        relationship: "pass",
        "source_not_null_pedestrian_hourly_counts_pedestriancount": "warn",
    }
    assert all(node.failures and node.failures > 0 for node in result.failed)
    assert tests["assert_no_negative_counts"].failures == 1
    assert tests["value_between_pedestrian_monthly_totals_days_counted__31__1"].failures == 1
    rendered = result.render()
    for name in SOURCE_TESTS | MODEL_TESTS:
        assert f"test {name} failed: {tests[name].failures} failing row" in rendered


@pytest.mark.slow
def test_a_missing_location_only_warns(pg) -> None:
    insert_counts(pg, [(7, DAY, 8, 10), (7, DAY, 9, 10)])

    result = run_transform(["source:pedestrian.hourly_counts"], command="test")

    assert result.ok, result.render()
    warned = [node for node in result.nodes if node.status == "warn"]
    assert [(node.name.split("__")[0], node.failures) for node in warned] == [
        ("source_relationships_pedestrian_hourly_counts_location_id", 2)
    ]


@pytest.mark.slow
def test_a_window_start_that_is_no_date_stops_the_run(pg) -> None:
    from data_platform.transform import TransformError

    with pytest.raises(TransformError, match="footfall_before_start must be a date YYYY-MM-DD"):
        run_transform(
            ["pedestrian_yearly_change"], vars={"footfall_before_start": "2019-03-01'; --"}
        )


@pytest.mark.slow
def test_an_empty_count_only_warns_and_is_left_out_of_totals(pg) -> None:
    insert_location(pg, 1)
    insert_location(pg, 2)
    insert_counts(pg, [(1, DAY, 8, 10), (2, DAY, 8, 4)])
    with pg.cursor() as cur:  # the portal left these counts empty
        cur.execute(
            "INSERT INTO pedestrian.hourly_counts (location_id, sensing_date, hourday, "
            "direction_1, pedestriancount, dp__load_id) VALUES (1, %(d)s, 9, 3, NULL, 0), "
            "(3, %(d)s, 0, NULL, NULL, 0)",
            {"d": DAY},
        )

    result = run_transform(["path:models/pedestrian"])

    assert result.ok, result.render()
    warned = {node.name: node.failures for node in result.nodes if node.status == "warn"}
    assert warned["source_not_null_pedestrian_hourly_counts_pedestriancount"] == 2
    # Left out of the totals, not taken as 0; sensor 3 counted nothing: no row, no rank.
    assert fetch(
        pg,
        "SELECT location_id, pedestrian_count, hours_counted FROM "
        "analytics.pedestrian_daily_totals ORDER BY 1",
    ) == [(1, 10, 1), (2, 4, 1)]
    assert fetch(
        pg, "SELECT location_id, rank FROM analytics.pedestrian_top10_daily ORDER BY rank"
    ) == [(1, 1), (2, 2)]
    assert fetch(
        pg, "SELECT location_id, days_counted FROM analytics.pedestrian_monthly_totals ORDER BY 1"
    ) == [(1, 1), (2, 1)]


def test_a_warning_keeps_its_failing_rows_and_past_its_threshold_it_errors(pg) -> None:
    """store_failures: the rows of a test that did not pass stay readable (a view per
    test), and the transform page shows them; a count expected to be non-zero warns up
    to its threshold (error_if) and errors beyond it."""
    from fastapi.testclient import TestClient

    from data_platform.settings import get_settings
    from data_platform.web.app import create_app

    insert_counts(pg, [(7, DAY, 8, 10), (7, DAY, 9, 10)])
    result = run_transform(["source:pedestrian.hourly_counts"], command="test")
    assert result.ok, result.render()
    with TestClient(create_app(get_settings())) as client:
        html = client.get("/transform").text
        api = client.get("/api/transform").json()
    (warned,) = [t for t in api["tests"] if t["status"] == "warn"]
    assert warned["failures_relation"].startswith("dbt_test_failures.")
    assert [row["from_field"] for row in warned["failing_rows"]] == ["7", "7"]
    assert 'id="failing-rows"' in html and warned["name"] in html

    with pg.cursor() as cur:  # a year and a day of ten sensors' hours without a location
        cur.execute(
            "INSERT INTO pedestrian.hourly_counts (id, location_id, sensing_date, hourday, "
            "pedestriancount, dp__load_id) SELECT 'x' || n, 1000 + n % 10, "
            "DATE '2020-01-01' + (n / 240), (n / 10) % 24, 1, 0 "
            "FROM generate_series(1, 87600) AS n"
        )
    result = run_transform(["source:pedestrian.hourly_counts"], command="test")
    assert not result.ok
    (errored,) = [n for n in result.nodes if n.status == "fail"]
    assert errored.name.startswith("source_relationships_pedestrian_hourly_counts_location_id")
    assert errored.failures == 87602
