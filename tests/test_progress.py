from bastion.progress import ProgressEvent, emit


def test_emit_sends_events_to_the_sink_and_tolerates_none() -> None:
    seen: list[ProgressEvent] = []
    emit(seen.append, "scan", 1, 3, "data-quality")
    emit(None, "scan", 2, 3)
    assert seen == [ProgressEvent("scan", 1, 3, "data-quality")]
    assert not seen[0].done
    assert ProgressEvent("scan", 3, 3).done
    assert not ProgressEvent("scan", 3, None).done
