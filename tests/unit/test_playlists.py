from __future__ import annotations

import itertools
import random
from uuid import UUID

import pytest
from pydantic import ValidationError

from onair.audio.playlists import PlayMode, PlayPlaylistParameters, PlaySoundParameters, plan

PLAYLIST = UUID("8c4c3f8e-3b8e-4d55-9a52-4f2f39c1e0a1")


def first(mode: PlayMode, count: int, *, shuffle: bool = False, n: int = 12) -> list[int]:
    return list(itertools.islice(plan(mode, count, random.Random(7), shuffle=shuffle), n))


@pytest.mark.parametrize(
    ("mode", "shuffle", "expected"),
    [
        pytest.param("continuous", False, [0, 1, 2, 3, 4], id="continuous_once_in_order"),
        pytest.param("continuous", True, [4, 0, 3, 1, 2], id="continuous_shuffled_once"),
        pytest.param("single", False, [0], id="single_first_track"),
        pytest.param("single", True, [0], id="single_ignores_shuffle"),
        pytest.param(
            "loop", False, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1], id="loop_repeats_the_list"
        ),
        pytest.param(
            "loop", True, [4, 0, 3, 1, 2, 4, 0, 3, 1, 2, 4, 0], id="loop_repeats_one_shuffle"
        ),
        pytest.param("loop_one", False, [0] * 12, id="loop_one_first_track"),
        pytest.param("loop_one", True, [0] * 12, id="loop_one_ignores_shuffle"),
        pytest.param(
            "random", False, [2, 1, 4, 0, 1, 0, 3, 0, 2, 0, 1, 4], id="random_seeded_sequence"
        ),
        pytest.param(
            "random", True, [2, 1, 4, 0, 1, 0, 3, 0, 2, 0, 1, 4], id="random_ignores_shuffle"
        ),
    ],
)
def test_plan_sequence(mode: PlayMode, shuffle: bool, expected: list[int]) -> None:
    assert first(mode, 5, shuffle=shuffle) == expected


def test_shuffle_is_the_permutation_drawn_from_the_injected_random() -> None:
    order = list(range(5))
    random.Random(7).shuffle(order)
    assert first("continuous", 5, shuffle=True) == order


@pytest.mark.parametrize("mode", ["continuous", "single", "loop", "loop_one", "random"])
def test_empty_playlist_plays_nothing(mode: PlayMode) -> None:
    assert list(plan(mode, 0, random.Random(1))) == []


def test_random_never_repeats_the_track_just_played_and_reaches_every_track() -> None:
    picks = first("random", 4, n=2000)
    assert all(a != b for a, b in itertools.pairwise(picks))
    counts = [picks.count(i) for i in range(4)]
    assert min(counts) > 400  # uniform would be 500 each


def test_random_alternates_two_tracks_and_repeats_a_lone_one() -> None:
    assert first("random", 2, n=6) == [1, 0, 1, 0, 1, 0]
    assert first("random", 1, n=3) == [0, 0, 0]


def test_plan_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="-1 tracks"):
        plan("continuous", -1, random.Random(1))


def test_playlist_parameters_defaults() -> None:
    parameters = PlayPlaylistParameters.model_validate({"playlist_id": str(PLAYLIST)})
    assert parameters == PlayPlaylistParameters(
        playlist_id=PLAYLIST, play_mode="continuous", shuffle=False, output=None, max_duration=None
    )


def test_playlist_parameters_seed_shape() -> None:
    parameters = PlayPlaylistParameters.model_validate(
        {"playlist_id": str(PLAYLIST), "play_mode": "loop", "shuffle": True, "max_duration": 90}
    )
    assert (parameters.play_mode, parameters.shuffle, parameters.max_duration) == ("loop", True, 90)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("play_mode", "repeat", id="unknown_mode"),
        pytest.param("max_duration", 0, id="zero_max_duration"),
        pytest.param("max_duration", -5, id="negative_max_duration"),
        pytest.param("playlist_id", "playlist-uuid-here", id="not_a_uuid"),
        pytest.param("output", "", id="empty_output_name"),
    ],
)
def test_playlist_parameters_name_the_wrong_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        PlayPlaylistParameters.model_validate({"playlist_id": str(PLAYLIST), field: value})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_unknown_play_mode_message_lists_the_modes() -> None:
    with pytest.raises(ValidationError, match="'continuous', 'single', 'loop', 'loop_one'"):
        PlayPlaylistParameters.model_validate({"playlist_id": str(PLAYLIST), "play_mode": "x"})


def test_sound_parameters() -> None:
    assert PlaySoundParameters.model_validate(
        {"sound_id": str(PLAYLIST), "output": "studio"}
    ) == PlaySoundParameters(sound_id=PLAYLIST, output="studio")
    with pytest.raises(ValidationError) as caught:
        PlaySoundParameters.model_validate({})
    assert [error["loc"] for error in caught.value.errors()] == [("sound_id",)]
