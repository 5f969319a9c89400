"""The threaded decode -> stylize -> encode pipeline of a video (generate.py).

Decoding and encoding (faststyle/video.py) run in their own threads with
bounded queues, so they overlap the net, and memory stays bounded by the
queue sizes whatever the video's length. The output is written to a
temporary file and renamed when complete.
"""
import os
import queue
import sys
import threading
import time

from faststyle import cli
from faststyle import tempfiles
from faststyle import video
from faststyle.errors import InputError

_END = object()


def _put(q, item, stop):
    """Blocking put that gives up when ``stop`` is set (the consumer is gone)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            pass


def _get(q, stop):
    """Blocking get that returns _END when ``stop`` is set (the producer is gone)."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return _END


def stylize_video(in_path, out_path, stylize, batch=1, progress=True,
                  ffmpeg='auto', queue_size=16):
    """Stylize every frame of ``in_path`` into ``out_path``; returns a summary dict.

    ``stylize`` maps a list of frames to a list of stylized frames; it is
    called with up to ``batch`` frames. Decoding and encoding run in their own
    threads, with bounded queues, so they overlap with ``stylize``.
    ``ffmpeg``: 'auto' (find one), a path, or None; used only without PyAV
    (then None means OpenCV writes, without sound).
    """
    cli.check_not_input(out_path, [in_path], 'input video')
    if os.path.splitext(out_path)[1].lower() not in video.VIDEO_EXTENSIONS:
        raise InputError('{}: the output of a video must be a video file ({})'.format(
            out_path, ', '.join(video.VIDEO_EXTENSIONS)))
    if ffmpeg == 'auto':
        ffmpeg = video.find_ffmpeg()
        if ffmpeg is None and video.import_av() is None:
            video.say_once('no ffmpeg binary found (pip install imageio-ffmpeg, or put '
                      'ffmpeg on PATH): videos are written without sound')
    start = time.perf_counter()
    reader = video.VideoReader(in_path)
    fps = reader.fps
    if fps is None:
        fps = 30.0
        video.note('{}: the frame rate is unknown; writing 30 frames/s'.format(in_path))
    try:
        video_tmp = video.temporary_path(out_path)
    except BaseException:
        reader.close()
        raise
    muxed_tmp = None
    writer = None
    writer_closed = False
    bar = None
    # Any thread that fails records its exception and sets ``stop``; the
    # others then wind down and the main thread re-raises it.
    stop = threading.Event()
    failures = []
    decoded = queue.Queue(queue_size)
    stylized = queue.Queue(queue_size)
    threads = []

    def decode():
        try:
            for item in reader.frames_with_times():  # (frame, time stamp)
                _put(decoded, item, stop)
                if stop.is_set():
                    return
            _put(decoded, _END, stop)
        except Exception as e:
            failures.append(e)
            stop.set()

    def encode():
        try:
            while True:
                item = _get(stylized, stop)
                if item is _END:
                    break
                writer.write(*item)
                bar.update(1)
        except Exception as e:
            failures.append(e)
            stop.set()

    try:
        writer = video.open_writer(video_tmp, fps, reader.width, reader.height, ffmpeg,
                                   name=out_path, time_base=reader.time_base,
                                   sample_aspect=reader.sample_aspect,
                                   audio_source=in_path)
        bar = cli.progress_bar(reader.frame_count_hint, os.path.basename(in_path),
                               progress)
        with cli.interrupts_held():
            for target in (decode, encode):
                thread = threading.Thread(target=target, daemon=True, name=target.__name__)
                thread.start()
                threads.append(thread)
        frames_done = 0
        finished = False
        while not finished and not stop.is_set():
            chunk = []
            while len(chunk) < batch:
                item = _get(decoded, stop)
                if item is _END:
                    finished = True
                    break
                chunk.append(item)
            if chunk:
                for out, (_, stamp) in zip(stylize([frame for frame, _ in chunk]), chunk):
                    _put(stylized, (out, stamp), stop)
                frames_done += len(chunk)
        _put(stylized, _END, stop)
        threads[1].join()
        if failures:
            raise failures[0]
        writer.close()
        writer_closed = True
        bar.close()

        # PyAV's writer has muxed the sound in; else ffmpeg adds it now.
        audio = bool(writer.adds_audio and writer.audio)
        written = video_tmp
        if not writer.adds_audio and ffmpeg and video.audio_codecs(in_path, ffmpeg):
            muxed_tmp = video.temporary_path(out_path)
            audio = video.copy_audio(video_tmp, in_path, muxed_tmp, ffmpeg, name=out_path)
            written = muxed_tmp if audio else video_tmp
        os.replace(written, out_path)
        shortfall = reader.shortfall()
        if shortfall:
            print('warning: {}; {} has {} frames'.format(shortfall, out_path, frames_done),
                  file=sys.stderr)
        return {'frames': frames_done, 'seconds': time.perf_counter() - start,
                'width': reader.width, 'height': reader.height, 'fps': fps,
                'audio': audio}
    finally:
        stop.set()
        aborting = writer is not None and not writer_closed
        if aborting and writer.abort_while_writing:
            writer.abort()  # unblocks an encoder thread stuck in write()
        if bar is not None:
            bar.close()
        for thread in threads:
            thread.join()
        if aborting and not writer.abort_while_writing:
            writer.abort()  # only once no thread is inside write()
        reader.close()
        for path in (video_tmp, muxed_tmp):
            if path:
                tempfiles.remove_quietly(path)
