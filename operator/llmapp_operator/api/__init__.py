"""The API: the LLMApp spec model, its CRD, conditions and phases, and the rendered Terraform inputs. Pure: no I/O."""
