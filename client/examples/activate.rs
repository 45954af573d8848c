//! Activates a device, validates it and fetches an offline envelope, printing what verified.
//!
//! ```text
//! cargo run -p licentia-client --example activate -- URL LICENSE_KEY FINGERPRINT
//! ```

use licentia_client::{Client, open_offline};
use licentia_core::model::RuntimeBindingRequest;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, key, fingerprint] = args.as_slice() else {
        eprintln!("usage: activate URL LICENSE_KEY FINGERPRINT");
        std::process::exit(2);
    };
    let client = Client::new(url, key)?;
    let device = RuntimeBindingRequest {
        fingerprint: Some(fingerprint.clone()),
        ..Default::default()
    };
    let activated = client.activate(&device).await?;
    println!(
        "activated: device {} ({:?}), signed by {}",
        activated.data().device_id,
        activated.data().status,
        activated.kid()
    );
    let validated = client.validate(&device).await?;
    println!(
        "validated: entitlement version {}, next check at {}",
        validated.data().entitlement_version,
        validated.data().next_check_at
    );
    match client.offline(&device).await {
        Ok(envelope) => {
            let keys = client.keys().await?;
            let opened = open_offline(&envelope, key, &keys, &device, chrono::Utc::now(), None)?;
            println!(
                "offline: valid until {}, signed by {}; store the watermark {}",
                opened.data().offline_expires_at,
                opened.kid(),
                opened.watermark()
            );
        }
        Err(e) => println!("offline: {e}"),
    }
    Ok(())
}
