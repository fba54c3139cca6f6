//! NVML calls nvml-wrapper 0.13 does not decode fully: field values of every value type (it rejects signed
//! int, which the T.Limit fields use) and the margin temperature.

use nvml_wrapper::error::{nvml_try, NvmlError};
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::{nvmlFieldValue_t, nvmlMarginTemperature_t};

/// A decoded field value: nvml.h's nvmlValueType_t, every member.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FieldValue {
    Float(f64),
    Int(i64),
    Uint(u64),
}

impl FieldValue {
    pub(crate) fn as_i64(self) -> Option<i64> {
        match self {
            FieldValue::Int(v) => Some(v),
            FieldValue::Uint(v) => i64::try_from(v).ok(),
            FieldValue::Float(v) => (v.is_finite() && v.fract() == 0.0).then_some(v as i64),
        }
    }

    pub fn as_u64(self) -> Option<u64> {
        self.as_i64().and_then(|v| u64::try_from(v).ok())
    }

    /// Rounded to a whole number: temperatures typed double still read right. Negative or huge values
    /// pass through as `u32::MAX` so the range check can name them instead of wrapping silently.
    pub(crate) fn as_rounded_u32(self) -> Option<u32> {
        let v = match self {
            FieldValue::Float(v) if v.is_finite() => v.round(),
            FieldValue::Float(_) => return Some(u32::MAX),
            FieldValue::Int(v) => v as f64,
            FieldValue::Uint(v) => v as f64,
        };
        Some(if (0.0..=f64::from(u32::MAX)).contains(&v) {
            v as u32
        } else {
            u32::MAX
        })
    }
}

/// NVML value types (nvml.h nvmlValueType_t).
const DOUBLE: u32 = 0;
const UNSIGNED_INT: u32 = 1;
const UNSIGNED_LONG: u32 = 2;
const UNSIGNED_LONG_LONG: u32 = 3;
const SIGNED_LONG_LONG: u32 = 4;
const SIGNED_INT: u32 = 5;
const UNSIGNED_SHORT: u32 = 6;

/// Reads `ids` in one call. Per field: `Ok(Some)` a value, `Ok(None)` not supported or an unknown value type,
/// `Err` any other error. Field ids below 251 need no translation between driver generations.
pub fn read(
    nvml: &Nvml,
    device: &Device,
    ids: &[u32],
) -> Vec<Result<Option<FieldValue>, NvmlError>> {
    let Ok(get) = nvml.lib().nvmlDeviceGetFieldValues.as_ref() else {
        return ids.iter().map(|_| Ok(None)).collect();
    };
    let mut values: Vec<nvmlFieldValue_t> = ids
        .iter()
        .map(|&id| {
            // SAFETY: nvmlFieldValue_t is plain C data; all-zero is a valid value.
            let mut v: nvmlFieldValue_t = unsafe { std::mem::zeroed() };
            v.fieldId = id;
            v
        })
        .collect();
    let Ok(count) = i32::try_from(values.len()) else {
        return Vec::new();
    };
    // SAFETY: `values` holds `count` initialised entries; the handle comes from this NVML instance.
    let status = unsafe { get(device.handle(), count, values.as_mut_ptr()) };
    if let Err(e) = nvml_try(status) {
        let unsupported = matches!(e, NvmlError::NotSupported);
        return ids
            .iter()
            .map(|_| {
                if unsupported {
                    Ok(None)
                } else {
                    Err(clone_error(&e))
                }
            })
            .collect();
    }
    values.iter().map(decode).collect()
}

fn decode(v: &nvmlFieldValue_t) -> Result<Option<FieldValue>, NvmlError> {
    match nvml_try(v.nvmlReturn) {
        Ok(()) => {}
        Err(NvmlError::NotSupported) => return Ok(None),
        Err(e) => return Err(e),
    }
    // SAFETY: NVML filled the union member that valueType names.
    let value = unsafe {
        match v.valueType {
            DOUBLE => FieldValue::Float(v.value.dVal),
            UNSIGNED_INT => FieldValue::Uint(u64::from(v.value.uiVal)),
            #[allow(clippy::unnecessary_cast)] // c_ulong is 32 bits on some targets
            UNSIGNED_LONG => FieldValue::Uint(v.value.ulVal as u64),
            UNSIGNED_LONG_LONG => FieldValue::Uint(v.value.ullVal),
            SIGNED_LONG_LONG => FieldValue::Int(v.value.sllVal),
            SIGNED_INT => FieldValue::Int(i64::from(v.value.siVal)),
            UNSIGNED_SHORT => FieldValue::Uint(u64::from(v.value.usVal)),
            _ => return Ok(None),
        }
    };
    Ok(Some(value))
}

/// How far the GPU is below T.Limit now (nvmlDeviceGetMarginTemperature, drivers from R555 on).
pub(crate) fn margin_temperature(nvml: &Nvml, device: &Device) -> Result<Option<i32>, NvmlError> {
    let Ok(get) = nvml.lib().nvmlDeviceGetMarginTemperature.as_ref() else {
        return Ok(None);
    };
    let mut info = nvmlMarginTemperature_t {
        // nvml.h: NVML_STRUCT_VERSION(MarginTemperature, 1) = sizeof | 1 << 24.
        version: std::mem::size_of::<nvmlMarginTemperature_t>() as u32 | (1 << 24),
        marginTemperature: 0,
    };
    // SAFETY: `info` is a valid, versioned struct; the handle comes from this NVML instance.
    match nvml_try(unsafe { get(device.handle(), &mut info) }) {
        Ok(()) => Ok(Some(info.marginTemperature)),
        Err(NvmlError::NotSupported | NvmlError::FunctionNotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// NvmlError is not Clone; the variants a whole-call failure can carry are rebuilt.
fn clone_error(e: &NvmlError) -> NvmlError {
    match e {
        NvmlError::GpuLost => NvmlError::GpuLost,
        NvmlError::ResetRequired => NvmlError::ResetRequired,
        NvmlError::Unknown => NvmlError::Unknown,
        NvmlError::NoPermission => NvmlError::NoPermission,
        NvmlError::InvalidArg => NvmlError::InvalidArg,
        NvmlError::Uninitialized => NvmlError::Uninitialized,
        _ => NvmlError::Unknown,
    }
}
