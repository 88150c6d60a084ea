"""Feature extraction (Li & Hoiem 2016): after the first task the whole network is frozen and only the new
task's head is trained on the fixed features."""

from .base import Method


class FeatureExtraction(Method):
    name = "feature-extraction"

    def before_task(self, task):
        super().before_task(task)
        if task.id > 0:
            self.model.requires_grad_(False)
            new_part = 0 if self.setting == "domain" else task.id  # the domain setting shares its one head part
            self.model.head.parts[new_part].requires_grad_(True)
