"""The one error a rule raises when it refuses an action.

A service function that will not do what it was asked raises `Refused`, having
changed nothing it will keep: the request's transaction is rolled back (see
`lib.transactions`). A view that shows a form catches it and puts the message next
to the field it names (`lib.forms.show_refusal`) or at the top of the page; one
that does not is answered by the app's error handler with the message on an error
page, with the refusal's 4xx status.
"""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """An action the rules do not allow; nothing was changed.

    `template` is the untranslated sentence (marked with `_l`) and `params` its
    values: `message()` translates at the moment it is shown, so a lazy string
    never holds a value. `field` names the form field the message belongs to, if
    any; `status` is the HTTP status a page answers with (400 unless said).
    """

    status = 400

    def __init__(self, template: Any, *, field: str | None = None, status: int | None = None, **params: Any) -> None:
        self.template = template
        self.params = params
        self.field = field
        if status is not None:
            self.status = status
        super().__init__(str(template) % params if params else str(template))

    def message(self) -> str:
        """The reason in the current language."""
        text = str(self.template)
        return text % self.params if self.params else text
