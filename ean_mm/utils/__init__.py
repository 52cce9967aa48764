from .preflight import (PreflightError, check_data_files, check_pretrained,
                        find_invalid_json)

__all__ = ['PreflightError', 'check_data_files', 'check_pretrained', 'find_invalid_json']
