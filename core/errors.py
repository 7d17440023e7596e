"""Errors SegLab raises on purpose: each carries a message meant for a person."""


class SegLabError(Exception):
    """Base class: the message is shown as is in the UI and on the command line."""


class BadInput(SegLabError):
    """An input (file, prompt, class list, option) that SegLab refuses, with the reason."""


class ModelUnavailable(SegLabError):
    """Weights for a model could not be found; says what was tried and how to provide them."""

    SAVE_PRETRAINED = "a folder saved with save_pretrained (model and processor)"

    def __init__(self, model: str, tried: list[str], env_var: str | None, hint: str = "",
                 provide: str = SAVE_PRETRAINED):
        self.model = model
        self.tried = list(tried)
        self.env_var = env_var
        lines = [f"Model '{model}' is not available."]
        if tried:
            lines.append("Tried: " + "; ".join(tried) + ".")
        if env_var:
            lines.append(f"Provide it by setting {env_var}=/path/to/it: {provide} (for example downloaded on a "
                         "machine with network access).")
        lines.append("Or run with SEGLAB_MODELS=tiny (or --models tiny) to use random tiny weights for a dry run.")
        if hint:
            lines.append(hint)
        super().__init__(" ".join(lines))
