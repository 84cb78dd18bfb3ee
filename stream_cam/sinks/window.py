"""An OpenCV window that shows frames and returns key presses (main thread only)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

import cv2
import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)


def _xlib():
    try:
        xlib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    except OSError:
        return None
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    xlib.XDefaultScreen.argtypes = [ctypes.c_void_p]
    xlib.XDisplayWidth.argtypes = xlib.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return xlib


def screen_size() -> tuple[int, int] | None:
    """(width, height) of the X screen, or None where it cannot be asked."""
    xlib = _xlib() if sys.platform.startswith("linux") and os.environ.get("DISPLAY") else None
    display = xlib.XOpenDisplay(None) if xlib is not None else None
    if xlib is None or not display:
        return None
    try:
        screen = xlib.XDefaultScreen(display)
        return xlib.XDisplayWidth(display, screen), xlib.XDisplayHeight(display, screen)
    finally:
        xlib.XCloseDisplay(display)


def display_available() -> bool:
    """True when a window can be opened. On Linux the X display is really tried:
    Qt aborts the whole process when DISPLAY names a display that is not there."""
    if not sys.platform.startswith("linux"):
        return True
    if not os.environ.get("DISPLAY"):
        return False
    xlib = _xlib()
    display = xlib.XOpenDisplay(None) if xlib is not None else None
    if not display:
        return False
    xlib.XCloseDisplay(display)
    return True


class Window:
    """``show(frame)`` draws and returns the key pressed (-1 for none, or when closed: 'q')."""

    def __init__(self, title: str = "stream_cam", fullscreen: bool = False) -> None:
        if not display_available():
            raise InputError("no display to open a window on: use --no-window (with --record, --log or --serve)")
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            raise InputError(f"cannot open a window: {exc.msg.strip() or exc}") from exc
        self.fullscreen = False
        self._shown = False
        if fullscreen:
            self.toggle_fullscreen()

    def show(self, frame: np.ndarray, wait_ms: int = 1) -> int:
        if not self._shown and not self.fullscreen:
            cv2.resizeWindow(self.title, frame.shape[1], frame.shape[0])
        cv2.imshow(self.title, frame)
        key = cv2.waitKey(wait_ms)
        if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            return ord("q")  # the user closed the window
        self._shown = True
        return key & 0xFF if key >= 0 else -1

    def toggle_fullscreen(self) -> None:
        self.fullscreen = not self.fullscreen
        mode = cv2.WINDOW_FULLSCREEN if self.fullscreen else cv2.WINDOW_NORMAL
        cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, mode)
        size = screen_size() if self.fullscreen else None
        if size is not None:
            # Without a window manager (a bare kiosk X server) fullscreen is only a request:
            # cover the screen ourselves.
            cv2.moveWindow(self.title, 0, 0)
            cv2.resizeWindow(self.title, *size)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass
