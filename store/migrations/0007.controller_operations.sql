-- The conference controller's operations: mute the others, remove the last added.
-- depends: 0006.in_call_options

ALTER TABLE in_call_options DROP CONSTRAINT in_call_options_operation_check;
ALTER TABLE in_call_options ADD CONSTRAINT in_call_options_operation_check
    CHECK (operation IN ('transfer', 'abort', 'mute', 'remove', 'none'));
