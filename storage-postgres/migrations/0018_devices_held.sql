-- A license's devices that hold or refuse a seat, found without reading its history (issue
-- 11: the runtime path). `licentia_aggregate` loads the devices with a status it is given
-- (active, blacklisted) or the queried binding key. Through `devices_newest` (license_id
-- only) that read every device the license ever had and filtered them: a license whose
-- machines come and go (an activation and a deactivation a day each) paid more on every
-- validate and write as its deactivated devices piled up, measured 0.6 ms for 70 of them.
-- With (license_id, status) both halves of the condition are index lookups (a bitmap OR
-- with `devices_by_binding`), whatever the history. A status change already updates an
-- indexed value (the live binding index's predicate), so this costs no heap-only update.
CREATE INDEX devices_held ON devices (license_id, status);
