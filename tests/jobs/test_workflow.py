"""Workflow documents: jobs.workflow.check_workflow / validate_workflow, rule by rule, with the reported paths."""

import copy
import json

import pytest
from django.core.exceptions import ValidationError

from jobs.workflow import check_workflow, validate_workflow
from pointscene.core import errors
from pointscene.core.models import Resource

pytestmark = pytest.mark.django_db


def task(name: str, resource_id, inputs=None, type_: str = "resource.input", **args) -> dict:
    body = {"name": name, "type": type_, "args": {"id": str(resource_id), **args}}
    if inputs is not None:
        body["inputs"] = inputs
    return body


def sync_task(name: str, resource_id, inputs=None, **args) -> dict:
    return task(name, resource_id, inputs, "rclone.sync", remotes=["acc:/Project Files", "gdrive:/backup"], **args)


def paths(problems: list[tuple[str, str]]) -> list[str]:
    return [path for path, _ in problems]


def only_problem(workflow, instance) -> tuple[str, str]:
    problems = check_workflow(workflow, instance.pk)
    assert len(problems) == 1, problems
    return problems[0]


def test_it_accepts_the_contract_workflow(workflow, instance):
    assert check_workflow(workflow, instance.pk) == []
    validate_workflow(workflow, instance.pk)


def test_it_does_not_change_the_workflow_it_checks(workflow, instance):
    before = copy.deepcopy(workflow)

    check_workflow(workflow, instance.pk)

    assert workflow == before


# --- the document


@pytest.mark.parametrize("value", [None, [], "tasks", 42, True, [{"tasks": []}]])
def test_it_refuses_a_workflow_that_is_not_an_object(value, instance):
    path, message = only_problem(value, instance)

    assert path == "workflow"
    assert "object" in message


def test_it_refuses_a_workflow_over_the_size_limit_and_accepts_one_at_it(workflow, instance, settings):
    size = len(json.dumps(workflow, separators=(",", ":")))

    settings.JOBS_MAX_WORKFLOW_BYTES = size
    assert check_workflow(workflow, instance.pk) == []

    settings.JOBS_MAX_WORKFLOW_BYTES = size - 1
    path, message = only_problem(workflow, instance)
    assert path == "workflow"
    assert str(size - 1) in message


def test_it_refuses_a_huge_workflow_with_the_default_limit(workflow, instance, settings):
    workflow["padding"] = "x" * settings.JOBS_MAX_WORKFLOW_BYTES

    assert paths(check_workflow(workflow, instance.pk)) == ["workflow"]


@pytest.mark.parametrize(
    "tasks",
    [
        pytest.param(None, id="null"),
        pytest.param([], id="empty"),
        pytest.param({}, id="object"),
        pytest.param({"0": {"name": "a"}}, id="object-of-tasks"),
        pytest.param("input", id="string"),
        pytest.param(3, id="number"),
    ],
)
def test_it_refuses_tasks_that_are_not_a_non_empty_list(tasks, instance):
    path, message = only_problem({"tasks": tasks}, instance)

    assert path == "workflow.tasks"
    assert "non-empty list" in message


def test_it_refuses_a_workflow_without_tasks(instance):
    assert paths(check_workflow({"name": "no tasks"}, instance.pk)) == ["workflow.tasks"]


def test_it_refuses_too_many_tasks(instance, resource, settings):
    settings.JOBS_MAX_WORKFLOW_TASKS = 3
    tasks = [task(f"t{i}", resource.pk) for i in range(3)]

    assert check_workflow({"tasks": tasks}, instance.pk) == []
    path, message = only_problem({"tasks": [*tasks, task("t3", resource.pk)]}, instance)
    assert path == "workflow.tasks"
    assert "3" in message


def test_it_refuses_more_tasks_than_the_default_limit(instance, resource, settings):
    tasks = [task(f"t{i}", resource.pk) for i in range(settings.JOBS_MAX_WORKFLOW_TASKS + 1)]

    assert paths(check_workflow({"tasks": tasks}, instance.pk)) == ["workflow.tasks"]


# --- tasks


@pytest.mark.parametrize("value", ["input", 7, None, ["name", "type"], True])
def test_it_refuses_a_task_that_is_not_an_object(value, instance, resource):
    path, _ = only_problem({"tasks": [task("a", resource.pk), value]}, instance)

    assert path == "workflow.tasks[1]"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(None, id="null"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param(5, id="number"),
        pytest.param(["a"], id="list"),
    ],
)
def test_it_refuses_a_task_without_a_name(name, instance, resource):
    second = task("b", resource.pk)
    second["name"] = name

    path, _ = only_problem({"tasks": [task("a", resource.pk), second]}, instance)

    assert path == "workflow.tasks[1].name"


def test_it_refuses_a_task_with_the_name_key_missing(instance, resource):
    second = task("b", resource.pk)
    del second["name"]

    assert paths(check_workflow({"tasks": [task("a", resource.pk), second]}, instance.pk)) == ["workflow.tasks[1].name"]


def test_it_refuses_duplicate_task_names(instance, resource):
    tasks = [task("a", resource.pk), task("b", resource.pk), task("a", resource.pk, inputs="b")]

    path, message = only_problem({"tasks": tasks}, instance)

    assert path == "workflow.tasks[2].name"
    assert "'a'" in message
    assert "unique" in message


@pytest.mark.parametrize("type_", ["rclone.copy", "", None, 5, "RESOURCE.INPUT", "resource.input "])
def test_it_refuses_an_unknown_task_type(type_, instance, resource):
    second = task("b", resource.pk)
    second["type"] = type_

    path, message = only_problem({"tasks": [task("a", resource.pk), second]}, instance)

    assert path == "workflow.tasks[1].type"
    assert "resource.input" in message  # names the known types
    assert "rclone.sync" in message


def test_it_refuses_a_task_without_a_type(instance, resource):
    second = task("b", resource.pk)
    del second["type"]

    assert paths(check_workflow({"tasks": [task("a", resource.pk), second]}, instance.pk)) == ["workflow.tasks[1].type"]


@pytest.mark.parametrize("args", [[], "id=1", 5, True])
def test_it_refuses_args_that_are_not_an_object(args, instance, resource):
    second = task("b", resource.pk)
    second["args"] = args

    path, message = only_problem({"tasks": [task("a", resource.pk), second]}, instance)

    assert path == "workflow.tasks[1].args"
    assert "object" in message


def test_it_reports_every_task_problem_at_once(instance, resource):
    tasks = [task("a", resource.pk), "oops", {"name": "", "type": "nope", "args": []}, task("a", resource.pk)]

    problems = check_workflow({"tasks": tasks}, instance.pk)

    assert sorted(paths(problems)) == sorted(
        [
            "workflow.tasks[1]",
            "workflow.tasks[2].name",
            "workflow.tasks[2].type",
            "workflow.tasks[2].args",
            "workflow.tasks[3].name",
        ]
    )


# --- inputs


@pytest.mark.parametrize(
    "inputs",
    [pytest.param("a", id="string"), pytest.param(["a"], id="list"), pytest.param(None, id="null")],
)
def test_it_accepts_inputs_as_a_name_a_list_or_null(inputs, instance, resource):
    second = task("b", resource.pk)
    second["inputs"] = inputs

    assert check_workflow({"tasks": [task("a", resource.pk), second]}, instance.pk) == []


def test_it_accepts_an_empty_inputs_list(instance, resource):
    assert check_workflow({"tasks": [task("a", resource.pk, inputs=[])]}, instance.pk) == []


@pytest.mark.parametrize(
    "inputs",
    [
        pytest.param(5, id="number"),
        pytest.param({"a": True}, id="object"),
        pytest.param([1], id="list-of-number"),
        pytest.param(["a", None], id="list-with-null"),
        pytest.param([["a"]], id="nested-list"),
        pytest.param(True, id="bool"),
    ],
)
def test_it_refuses_inputs_of_the_wrong_type(inputs, instance, resource):
    second = task("b", resource.pk)
    second["inputs"] = inputs

    path, message = only_problem({"tasks": [task("a", resource.pk), second]}, instance)

    assert path == "workflow.tasks[1].inputs"
    assert "task name" in message


@pytest.mark.parametrize(
    ("inputs", "path"),
    [
        ("missing", "workflow.tasks[1].inputs[0]"),
        (["missing"], "workflow.tasks[1].inputs[0]"),
        (["a", "missing"], "workflow.tasks[1].inputs[1]"),
    ],
)
def test_it_refuses_an_input_naming_a_missing_task(inputs, path, instance, resource):
    tasks = [task("a", resource.pk), task("b", resource.pk, inputs=inputs)]

    problem = only_problem({"tasks": tasks}, instance)

    assert problem[0] == path
    assert "'missing'" in problem[1]


@pytest.mark.parametrize(
    ("inputs", "path"), [("b", "workflow.tasks[1].inputs[0]"), (["a", "b"], "workflow.tasks[1].inputs[1]")]
)
def test_it_refuses_a_task_that_is_its_own_input(inputs, path, instance, resource):
    tasks = [task("a", resource.pk), task("b", resource.pk, inputs=inputs)]

    problem = only_problem({"tasks": tasks}, instance)

    assert problem[0] == path
    assert "own input" in problem[1]


def test_it_refuses_a_two_task_cycle(instance, resource):
    tasks = [task("a", resource.pk, inputs="b"), task("b", resource.pk, inputs="a")]

    path, message = only_problem({"tasks": tasks}, instance)

    assert path in {"workflow.tasks[0].inputs", "workflow.tasks[1].inputs"}
    assert "cycle" in message
    assert "a -> b -> a" in message or "b -> a -> b" in message


def test_it_refuses_a_three_task_cycle_and_names_it(instance, resource):
    tasks = [
        task("start", resource.pk),
        task("x", resource.pk, inputs=["start", "z"]),
        task("y", resource.pk, inputs="x"),
        task("z", resource.pk, inputs="y"),
    ]

    path, message = only_problem({"tasks": tasks}, instance)

    assert path in {"workflow.tasks[1].inputs", "workflow.tasks[2].inputs", "workflow.tasks[3].inputs"}
    assert "cycle" in message
    assert any(cycle in message for cycle in ("x -> z -> y -> x", "y -> x -> z -> y", "z -> y -> x -> z"))
    assert "start" not in message


def test_it_accepts_a_diamond(instance, resource):
    tasks = [
        task("top", resource.pk),
        task("left", resource.pk, inputs="top"),
        task("right", resource.pk, inputs=["top"]),
        sync_task("bottom", resource.pk, inputs=["left", "right"]),
    ]

    assert check_workflow({"tasks": tasks}, instance.pk) == []


def test_it_accepts_tasks_listed_after_the_tasks_that_use_them(instance, resource):
    tasks = [sync_task("sync", resource.pk, inputs="input"), task("input", resource.pk)]

    assert check_workflow({"tasks": tasks}, instance.pk) == []


# --- resources


@pytest.mark.parametrize("key", ["id", "resourceId"])
@pytest.mark.parametrize("as_int", [False, True], ids=["string", "int"])
def test_it_accepts_the_resource_by_either_key_as_string_or_int(key, as_int, instance, resource):
    args = {key: resource.pk if as_int else str(resource.pk)}

    assert check_workflow({"tasks": [{"name": "a", "type": "resource.input", "args": args}]}, instance.pk) == []


@pytest.mark.parametrize("task_type", ["resource.input", "rclone.sync", "sync.files"])
def test_it_accepts_both_keys_naming_the_same_resource(task_type, instance, resource):
    args = {"id": str(resource.pk), "resourceId": resource.pk, "remotes": ["a:", "b:"]}

    assert check_workflow({"tasks": [{"name": "a", "type": task_type, "args": args}]}, instance.pk) == []


def test_it_refuses_both_keys_naming_different_resources(instance, resource):
    second = Resource.objects.create(instance=instance, name="Site B")
    args = {"id": str(resource.pk), "resourceId": str(second.pk)}

    path, message = only_problem({"tasks": [{"name": "a", "type": "resource.input", "args": args}]}, instance)

    assert path == "workflow.tasks[0].args.resourceId"
    assert "different" in message


@pytest.mark.parametrize("args", [{}, {"exclude": [".log/**"]}, None])
def test_it_requires_a_resource_id(args, instance):
    path, _ = only_problem({"tasks": [{"name": "a", "type": "resource.input", "args": args}]}, instance)

    assert path == "workflow.tasks[0].args.resourceId"


def test_it_requires_a_resource_id_when_args_are_missing(instance):
    assert paths(check_workflow({"tasks": [{"name": "a", "type": "resource.input"}]}, instance.pk)) == [
        "workflow.tasks[0].args.resourceId"
    ]


@pytest.mark.parametrize("value", ["abc", "", "1.5", "-1", 0, -1, 1.0, True, None, [1], " 1", "١"])
@pytest.mark.parametrize("key", ["id", "resourceId"])
def test_it_refuses_a_malformed_resource_id(key, value, instance):
    path, message = only_problem({"tasks": [{"name": "a", "type": "resource.input", "args": {key: value}}]}, instance)

    assert path == f"workflow.tasks[0].args.{key}"
    assert "resource id" in message


def test_it_reads_a_foreign_resource_exactly_like_a_missing_one(instance, resource, other_resource):
    missing = Resource.objects.order_by("-pk").first().pk + 1000

    def problem_for(resource_id):
        tasks = [task("a", resource.pk), task("b", resource_id, inputs="a")]
        path, message = only_problem({"tasks": tasks}, instance)
        return path, message.replace(str(resource_id), "<id>")

    foreign = problem_for(other_resource.pk)
    nonexistent = problem_for(missing)

    assert foreign == nonexistent
    assert foreign[0] == "workflow.tasks[1].args.id"
    assert "Globex" not in foreign[1]


def test_it_reports_each_foreign_resource_path(instance, resource, other_resource):
    tasks = [
        task("a", other_resource.pk),
        {"name": "b", "type": "resource.input", "args": {"resourceId": other_resource.pk}},
        sync_task("c", resource.pk, inputs=["a", "b"]),
    ]

    problems = check_workflow({"tasks": tasks}, instance.pk)

    assert paths(problems) == ["workflow.tasks[0].args.id", "workflow.tasks[1].args.resourceId"]


def test_it_refuses_a_huge_resource_id_without_crashing(instance):
    for value in [str(2**63), 2**63, "9" * 40, 10**30]:
        path, _ = only_problem({"tasks": [{"name": "a", "type": "resource.input", "args": {"id": value}}]}, instance)
        assert path == "workflow.tasks[0].args.id"


# --- workflow.instanceId


@pytest.mark.parametrize("instance_id", ["own-str", "own-int", "absent"])
def test_it_accepts_the_jobs_own_instance_id_or_none(instance_id, workflow, instance):
    if instance_id == "own-str":
        workflow["instanceId"] = str(instance.pk)
    elif instance_id == "own-int":
        workflow["instanceId"] = instance.pk
    else:
        del workflow["instanceId"]

    assert check_workflow(workflow, instance.pk) == []


@pytest.mark.parametrize("value", ["other", "999999", "abc", "", 0])
def test_it_refuses_another_instance_id_in_the_workflow(value, workflow, instance, other_instance):
    workflow["instanceId"] = str(other_instance.pk) if value == "other" else value

    path, _ = only_problem(workflow, instance)

    assert path == "workflow.instanceId"


# --- rclone.sync arguments


@pytest.mark.parametrize("task_type", ["rclone.sync", "sync.files"])
def test_it_accepts_sync_tasks_under_both_names(task_type, instance, resource):
    tasks = [
        task("input", resource.pk),
        task(
            "sync",
            resource.pk,
            inputs="input",
            type_=task_type,
            remotes=["acc:/Project Files", "my remote.2:backup"],
            mode="copy",
            transfers=64,
            checkers=1,
            dryRun=False,
            checksum=True,
            include=["**/*.pdf"],
            exclude="*.tmp",
        ),
    ]

    assert check_workflow({"tasks": tasks}, instance.pk) == []


@pytest.mark.parametrize("mode", ["sync", "copy", "move", "bisync", None])
def test_it_accepts_each_sync_mode(mode, instance, resource):
    assert check_workflow({"tasks": [sync_task("s", resource.pk, mode=mode)]}, instance.pk) == []


@pytest.mark.parametrize("transfers", [1, 64, None])
def test_it_accepts_transfers_in_range(transfers, instance, resource):
    assert check_workflow({"tasks": [sync_task("s", resource.pk, transfers=transfers)]}, instance.pk) == []


SYNC_ARG_ERRORS = [
    pytest.param({"remotes": None}, "args.remotes", id="remotes-null"),
    pytest.param({"remotes": []}, "args.remotes", id="remotes-empty"),
    pytest.param({"remotes": ["a:"]}, "args.remotes", id="remotes-one"),
    pytest.param({"remotes": ["a:", "b:", "c:"]}, "args.remotes", id="remotes-three"),
    pytest.param({"remotes": "a:,b:"}, "args.remotes", id="remotes-string"),
    pytest.param({"remotes": {"0": "a:", "1": "b:"}}, "args.remotes", id="remotes-object"),
    pytest.param({"remotes": ["no-colon", "b:"]}, "args.remotes[0]", id="remote-no-colon"),
    pytest.param({"remotes": ["a:", 5]}, "args.remotes[1]", id="remote-number"),
    pytest.param({"remotes": ["a:", "-bad:x"]}, "args.remotes[1]", id="remote-name-dash"),
    pytest.param({"remotes": ["a:", " bad:x"]}, "args.remotes[1]", id="remote-name-space"),
    pytest.param({"remotes": ["a:", "bad/name:x"]}, "args.remotes[1]", id="remote-name-slash"),
    pytest.param({"remotes": [":x", "b:"]}, "args.remotes[0]", id="remote-name-empty"),
    pytest.param({"remotes": ["a:", "x" * 65 + ":y"]}, "args.remotes[1]", id="remote-name-long"),
    pytest.param({"mode": "mirror"}, "args.mode", id="mode-unknown"),
    pytest.param({"mode": "SYNC"}, "args.mode", id="mode-case"),
    pytest.param({"mode": 1}, "args.mode", id="mode-number"),
    pytest.param({"transfers": 0}, "args.transfers", id="transfers-0"),
    pytest.param({"transfers": 65}, "args.transfers", id="transfers-65"),
    pytest.param({"transfers": -1}, "args.transfers", id="transfers-negative"),
    pytest.param({"transfers": "4"}, "args.transfers", id="transfers-string"),
    pytest.param({"transfers": 4.5}, "args.transfers", id="transfers-float"),
    pytest.param({"transfers": True}, "args.transfers", id="transfers-bool"),
    pytest.param({"checkers": 129}, "args.checkers", id="checkers-129"),
    pytest.param({"dryRun": "yes"}, "args.dryRun", id="dryrun-string"),
    pytest.param({"dryRun": 1}, "args.dryRun", id="dryrun-int"),
    pytest.param({"checksum": "false"}, "args.checksum", id="checksum-string"),
    pytest.param({"include": [""]}, "args.include", id="include-empty-pattern"),
    pytest.param({"exclude": 5}, "args.exclude", id="exclude-number"),
]


@pytest.mark.parametrize("task_type", ["rclone.sync", "sync.files"])
@pytest.mark.parametrize(("args", "sub"), SYNC_ARG_ERRORS)
def test_it_refuses_bad_sync_arguments(task_type, args, sub, instance, resource):
    sync = sync_task("sync", resource.pk, inputs="input")
    sync["type"] = task_type
    sync["args"].update(args)
    tasks = [task("input", resource.pk), sync]

    path, _ = only_problem({"tasks": tasks}, instance)

    assert path == f"workflow.tasks[1].{sub}"


def test_it_refuses_a_sync_task_without_remotes(instance, resource):
    sync = sync_task("sync", resource.pk)
    del sync["args"]["remotes"]

    assert paths(check_workflow({"tasks": [sync]}, instance.pk)) == ["workflow.tasks[0].args.remotes"]


# --- validate_workflow: the same problems as a ValidationError


def test_it_raises_one_coded_error_per_path(instance, resource):
    tasks = [task("a", resource.pk, inputs="nope"), sync_task("b", resource.pk, mode="mirror", transfers=0)]

    with pytest.raises(ValidationError) as raised:
        validate_workflow({"tasks": tasks}, instance.pk)

    error_dict = raised.value.error_dict
    assert set(error_dict) == {"workflow.tasks[1].args.mode", "workflow.tasks[1].args.transfers"}
    assert {e.code for errs in error_dict.values() for e in errs} == {errors.INVALID_WORKFLOW}


def test_it_names_the_paths_under_the_given_field(instance, resource):
    tasks = [task("a", resource.pk), task("b", resource.pk, inputs=["a", "zzz"])]

    with pytest.raises(ValidationError) as raised:
        validate_workflow({"tasks": tasks}, instance.pk, field="input.workflow")

    assert list(raised.value.error_dict) == ["input.workflow.tasks[1].inputs[1]"]
    assert raised.value.error_dict["input.workflow.tasks[1].inputs[1]"][0].code == errors.INVALID_WORKFLOW


@pytest.mark.parametrize("value", [None, "x", []])
def test_it_raises_for_a_non_object(value, instance):
    with pytest.raises(ValidationError) as raised:
        validate_workflow(value, instance.pk)

    assert [(k, [e.code for e in v]) for k, v in raised.value.error_dict.items()] == [
        ("workflow", [errors.INVALID_WORKFLOW])
    ]


def test_it_reports_a_shape_problem_before_looking_up_resources(instance, other_resource, django_assert_num_queries):
    tasks = [task("a", other_resource.pk), task("a", other_resource.pk)]

    with django_assert_num_queries(0):
        problems = check_workflow({"tasks": tasks}, instance.pk)

    assert paths(problems) == ["workflow.tasks[1].name"]


def test_it_looks_resources_up_in_one_query(instance, resource, django_assert_num_queries):
    tasks = [task(f"t{i}", resource.pk) for i in range(20)]

    with django_assert_num_queries(1):
        assert check_workflow({"tasks": tasks}, instance.pk) == []
