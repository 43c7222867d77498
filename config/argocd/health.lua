-- Argo CD health of a Meshwright ServiceMesh (mesh.meshwright.dev/ServiceMesh), read from its status contract in the
-- same order as kstatus, so Argo CD, Flux and `kubectl wait` agree on what the mesh is doing.
-- It runs in argocd-cm without the string and math libraries: only base-library calls and `..` below.

local function findCondition(conditions, conditionType)
  if type(conditions) ~= "table" then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == conditionType then
      return condition
    end
  end
  return nil
end

local function isTrue(condition)
  return condition ~= nil and condition.status == "True"
end

-- "<prefix>: <message>", or the prefix alone when the condition says nothing more.
local function explain(prefix, condition)
  if condition ~= nil and type(condition.message) == "string" and condition.message ~= "" then
    return prefix .. ": " .. condition.message
  end
  return prefix
end

local function verdict(status, message)
  return { status = status, message = message }
end

-- Numbers arrive as Lua numbers or, from some decoders, as strings: compare their text.
local function sameNumber(a, b)
  return tostring(a) == tostring(b)
end

local function health(mesh)
  local metadata = mesh.metadata or {}
  if metadata.deletionTimestamp ~= nil then
    return verdict("Progressing", "Deleting")
  end

  local status = mesh.status
  if type(status) ~= "table" or status.observedGeneration == nil or sameNumber(status.observedGeneration, 0)
      or type(status.conditions) ~= "table" or #status.conditions == 0 then
    return verdict("Progressing", "Waiting for Meshwright to reconcile the ServiceMesh")
  end
  if metadata.generation ~= nil and not sameNumber(metadata.generation, status.observedGeneration) then
    return verdict("Progressing", "Waiting for Meshwright to reconcile generation " .. tostring(metadata.generation) ..
      " (status is from generation " .. tostring(status.observedGeneration) .. ")")
  end

  local reconciling = findCondition(status.conditions, "Reconciling")
  if isTrue(reconciling) then
    return verdict("Progressing", explain("Reconciling", reconciling))
  end
  local stalled = findCondition(status.conditions, "Stalled")
  if isTrue(stalled) then
    return verdict("Degraded", explain("Stalled", stalled))
  end
  local ready = findCondition(status.conditions, "Ready")
  if isTrue(ready) then
    return verdict("Healthy", explain("Ready", ready))
  end
  if ready == nil then
    return verdict("Progressing", "Waiting for the Ready condition")
  end
  return verdict("Progressing", explain("Not ready", ready))
end

local hs = health(obj)
return hs
