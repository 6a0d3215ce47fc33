"""Stack files (stacks/*.yaml): their models and loader (pure), and applying them with ZenML's Client
(keel.stacks.apply, imported only when a stack is applied or chosen)."""

from keel.stacks.load import StackFileError, load_stack_file, stack_file_for
from keel.stacks.models import ComponentSpec, ServerSpec, StackFile

__all__ = ["ComponentSpec", "ServerSpec", "StackFile", "StackFileError", "load_stack_file", "stack_file_for"]
