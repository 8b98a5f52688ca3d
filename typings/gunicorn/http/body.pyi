from typing import Any

class LengthReader:
    unreader: Any
    length: int
    def __init__(self, unreader: Any, length: int) -> None: ...
    def read(self, size: int) -> bytes: ...
